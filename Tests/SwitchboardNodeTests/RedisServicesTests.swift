import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SwitchboardApi
import SwitchboardLocks
import SwitchboardNode
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardRooms
import SwitchboardRoomsRedis
import SwitchboardTesting
import Testing

@Suite(
    "Redis pieces as services",
    .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason)),
    .timeLimit(.minutes(1))
)
struct RedisServicesTests {
    @Test("Two connections per node; graceful shutdown removes the node's presence (announced) and closes both")
    func gracefulShutdown() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let group = MultiThreadedEventLoopGroup.singleton
        let configuration = RedisConfiguration(host: "127.0.0.1", port: redis.port)
        let client = RedisClient(configuration: configuration, eventLoop: group.next(), logger: testLogger)
        let broker = RedisBroker(client: client, eventLoopGroup: group, logger: testLogger)
        let presence = RedisPresence(redis: client, ttl: .seconds(30), logger: testLogger)
        let services = ServiceGroup(
            configuration: .init(services: [client, broker, presence], logger: testLogger))
        let running = Task { try await services.run() }

        let admin = try await RedisConnection.connect(to: configuration, on: group.next(), logger: testLogger)
        let announcements = Locked<[String]>([])
        let listener = RedisBroker(configuration: configuration, eventLoopGroup: group, logger: testLogger)
        listener.start()
        let subscription = try await listener.subscribeDirect(to: RoomChannel.name(of: "lobby")) { event in
            if case .message(let message) = event {
                announcements.withLock { $0.append(String(buffer: message.payload)) }
            }
        }
        #expect(await broker.waitUntilConnected(timeout: .seconds(5)))
        #expect(await listener.waitUntilConnected(timeout: .seconds(5)))
        // Every node holds two connections, whatever it does: commands (shared) and the subscriber.
        let nodeSubscription = try await broker.subscribeDirect(to: "anything") { _ in }
        let clients = { @Sendable () async throws -> Int in
            (try await admin.send(RESPCommand("CLIENT", "LIST")).string ?? "").split(separator: "\n").count
        }
        #expect(await eventually { (try? await clients()) == 1 + 2 + 2 }, "admin, this node's two, the listener's two")

        let entered = group.next().makePromise(of: Void.self)
        presence.enter(PresenceMember(id: "n1-1", nick: "alice"), room: "lobby", promise: entered)
        try await entered.futureResult.value()
        #expect(try await presence.members(of: "lobby").map(\.nick) == ["alice"])
        #expect(try await admin.send(RESPCommand("ZCARD", RoomKeys.presence("lobby"))) == .integer(1))

        await services.triggerGracefulShutdown()
        try await running.value
        #expect(try await admin.send(RESPCommand("ZCARD", RoomKeys.presence("lobby"))) == .integer(0))
        #expect(await eventually { announcements.withLock { $0.count } == 2 })
        #expect(announcements.withLock { $0.map { $0.contains(#""event":"leave""#) } } == [false, true])
        #expect(await eventually { (try? await clients()) == 1 + 2 }, "this node's connections are closed")
        withExtendedLifetime((subscription, nodeSubscription)) {}
        await listener.shutdown()
        await admin.close()
    }
}

@Suite(
    "Readiness with Redis",
    .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason)),
    .timeLimit(.minutes(1))
)
struct ReadinessTests {
    @Test("/readyz answers 503 while Redis is hung (SIGSTOP: connections open, no answers) and 200 once it runs")
    func hungRedis() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let node = try await RedisNode(redis)
        let app = ChatApplication.make(
            topics: node.topics,
            health: {
                BrokerHealth(kind: "redis", unavailable: await node.broker.unreadiness(timeout: .milliseconds(300)))
            },
            roomLog: RedisRoomLog(redis: node.client), presence: node.presence, logger: testLogger)
        try await withServer(app) { _, port in
            let ready = { @Sendable () async throws -> TestResponse in
                try await RawClient.withConnection(port: port) { client in
                    try await client.send("GET /readyz HTTP/1.1\r\nHost: t\r\n\r\n")
                    return try await client.readResponse()
                }
            }
            // Eventually: the check's PING has 300 ms, which a loaded machine can miss while the node starts.
            #expect(await eventually { (try? await ready().status) == 200 })
            try redis.pause()
            let start = ContinuousClock.now
            let hung = try await ready()
            #expect(hung.status == 503 && hung.body.contains("PING"), "\(hung.body)")
            #expect(ContinuousClock.now - start < .seconds(2), "a readiness check has a deadline")
            try redis.resume()
            #expect(await eventually { (try? await ready().status) == 200 })
        }
        await node.stop()
    }
}

@Suite(
    "A hung Redis",
    .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason)),
    .timeLimit(.minutes(1))
)
struct HungRedisTests {
    @Test("Four /chat senders flooding 60 KB messages at a hung Redis: pending work stays bounded, senders are told")
    func floodingSenders() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let node = try await RedisNode(redis, commandTimeout: .seconds(1))
        try await withServer(node.app()) { _, port in
            try redis.pause()
            // One masked frame, sent again and again: masking 60 KB per send would cost the test's own CPU.
            let frame = clientFrame(0x1, text: String(repeating: "x", count: 60 * 1024))
            try await withThrowingTaskGroup(of: UInt16?.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await RawClient.withConnection(port: port, deadline: .seconds(30)) { sender in
                            #expect(try await sender.handshake(path: "/chat").status == 101)
                            // At full scale 4 × 100 × 60 KB is more than the 16 MiB a connection may have pending:
                            // some fail at once, the rest at the command timeout; each sender is told (1013).
                            for _ in 0..<scaled(40, full: 100) {
                                do {
                                    try await sender.send(frame)
                                } catch {
                                    break  // closed under us
                                }
                            }
                            while let frame = try await sender.readFrame() {
                                if frame.opcode == 0x8 { return frame.closeCode }
                            }
                            return nil
                        }
                    }
                }
                for try await code in group {
                    #expect(code == 1013, "the sender is told the message was not published")
                }
            }
            #expect(node.client.bytesPending <= 16 * 1024 * 1024, "\(node.client.bytesPending) bytes pending")
            try redis.resume()
            #expect(await eventually(timeout: .seconds(10)) { node.client.bytesPending == 0 })
            #expect(await node.waitUntilServing())
            // Redis runs one connection's commands in order: once a PING is answered, the publishes it had buffered
            // while stopped have been carried out, which makes late messages on the sockets below rarer.
            #expect(await eventually { (try? await node.client.send(RESPCommand("PING"))) == .simpleString("PONG") })
            // Chatting again; a socket that meets the gap of the subscriber connection's comeback is closed with
            // 1013, and the client tries again, as clients are told to.
            var answer: TestFrame?
            for _ in 0..<5 where answer?.text != "back" {
                var late = 0
                answer = try await RawClient.withConnection(port: port) { client in
                    #expect(try await client.handshake(path: "/chat").status == 101)
                    try await client.send(clientFrame(0x1, text: "back"))
                    // Publishes that timed out for us while Redis was stopped may still be carried out by it once
                    // resumed (they were in its socket buffer; a timeout never proves a command was not run), and
                    // reach this socket first: skip them.
                    while let frame = try await client.readFrame() {
                        if frame.opcode == 0x1, frame.text != "back" {
                            late += 1
                            continue
                        }
                        return frame
                    }
                    return nil
                }
                // Megabytes of such late 60 KB messages, read by this test's debug-built client, may make it a slow
                // consumer by the server's rule (1008 after 1 MiB queued); it then tries again, like a page would.
                #expect(
                    answer?.text == "back" || answer?.closeCode == 1013
                        || (late > 0 && (answer == nil || answer?.closeCode == 1008)),
                    "opcode \(answer.map { String($0.opcode) } ?? "none (closed)"), code \(answer?.closeCode ?? 0), \(late) late"
                )
            }
            #expect(answer?.text == "back")
        }
        await node.stop()
    }

    @Test("A join with Redis hung is answered `unavailable` within the join timeout, and works once Redis is back")
    func joinDeadline() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        // Redis's own timeout far away: the join's deadline is what answers.
        let node = try await RedisNode(redis, commandTimeout: .seconds(30))
        // 2 s: the join after Redis is back must fit in it on a loaded machine too (1 s failed there).
        let configuration = ChatConfiguration(joinTimeout: .seconds(2))
        try await withServer(node.app(configuration: configuration)) { _, port in
            try await RawClient.withConnection(port: port, deadline: .seconds(30)) { client in
                try await client.openRooms()
                try redis.pause()
                let start = ContinuousClock.now
                try await client.sendJSON(["type": "join", "room": "lobby", "ref": "j1"])
                let answer = try await client.readJSON()
                let waited = ContinuousClock.now - start
                #expect(answer["code"] as? String == "unavailable" && answer["ref"] as? String == "j1", "\(answer)")
                #expect(answer["room"] as? String == "lobby", "the error names the room, so a client can retry it")
                #expect(waited >= .milliseconds(1900) && waited < .seconds(6), "answered after \(waited)")
                try redis.resume()
                #expect(await node.waitUntilServing())
                // The timed-out attempt's steps finish now and are ignored: the next answer is the new join's.
                let joined = try await client.join("lobby")
                #expect(joined["type"] as? String == "joined")
                try await client.sendJSON(["type": "say", "room": "lobby", "text": "back"])
                let next = try await client.readJSON()
                #expect(next["type"] as? String == "message" && next["text"] as? String == "back", "\(next)")
            }
        }
        await node.stop()
    }
}
