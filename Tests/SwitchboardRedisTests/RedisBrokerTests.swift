import Foundation
import NIOCore
import NIOPosix
import SwitchboardLocks
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardTesting
import Testing

/// Records what subscribers receive.
private final class Inbox: Sendable {
    private let events = Locked<[Int: [BrokerEvent]]>([:])

    func handler(_ id: Int = 0) -> @Sendable (BrokerEvent) -> Void {
        { event in self.events.withLock { $0[id, default: []].append(event) } }
    }

    func messages(_ id: Int = 0) -> [String] {
        self.events.withLock { events in
            (events[id] ?? []).compactMap {
                if case .message(let message) = $0 { String(buffer: message.payload) } else { nil }
            }
        }
    }

    func gaps(_ id: Int = 0) -> Int {
        self.events.withLock { $0[id]?.filter { $0 == .gap }.count ?? 0 }
    }

    var totalMessages: Int {
        self.events.withLock { $0.values.reduce(0) { $0 + $1.filter { $0 != .gap }.count } }
    }
}

/// Pub/sub clients in Redis's `CLIENT LIST`: the connections with at least one channel subscription.
private func subscriberConnections(_ admin: RedisConnection) async throws -> [String] {
    let list = try await admin.send(RESPCommand("CLIENT", "LIST")).string ?? ""
    return list.split(separator: "\n").map(String.init).filter { line in
        line.split(separator: " ").contains { $0.hasPrefix("sub=") && $0 != "sub=0" }
    }
}

private func numberOfSubscribers(_ admin: RedisConnection, _ channels: [String]) async throws -> [Int] {
    let reply = try await admin.send(RESPCommand("PUBSUB", (["NUMSUB"] + channels).map { ByteBuffer(string: $0) }))
    let elements = reply.elements ?? []
    return stride(from: 1, to: elements.count, by: 2).map {
        if case .integer(let count) = elements[$0] { Int(count) } else { -1 }
    }
}

@Suite("RedisBroker against redis-server", requiresRedis, .timeLimit(.minutes(1)))
struct RedisBrokerTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    private func makeBroker(_ redis: RedisServerProcess) async throws -> RedisBroker {
        let broker = RedisBroker(
            configuration: redis.configuration(commandTimeout: .seconds(1)),
            eventLoopGroup: self.group,
            logger: redisTestLogger
        )
        broker.start()
        #expect(await broker.waitUntilConnected(timeout: .seconds(5)))
        return broker
    }

    @Test("A message round-trips through Redis to subscribers on every loop, in order")
    func roundTrip() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let broker = try await self.makeBroker(redis)
        let inbox = Inbox()
        let first = try await broker.subscribe(to: "chat", on: self.group.next(), handler: inbox.handler(1))
        let second = try await broker.subscribe(to: "chat", on: self.group.next(), handler: inbox.handler(2))
        for n in 0..<100 { try await broker.publish(ByteBuffer(string: "m\(n)"), to: "chat") }
        #expect(await eventually { inbox.totalMessages == 200 })
        #expect(inbox.messages(1) == (0..<100).map { "m\($0)" })
        #expect(inbox.messages(2) == (0..<100).map { "m\($0)" })
        #expect(inbox.gaps(1) == 0)
        withExtendedLifetime((first, second)) {}
        await broker.shutdown()
    }

    @Test("1,000 subscribers on 50 channels share one subscriber connection; the last one out unsubscribes")
    func oneSubscriberConnection() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let broker = try await self.makeBroker(redis)
        let admin = try await redis.connect()
        let inbox = Inbox()
        var subscriptions: [Subscription] = []
        for id in 0..<1000 {
            subscriptions.append(
                try await broker.subscribe(to: "room-\(id % 50)", on: self.group.next(), handler: inbox.handler(id))
            )
        }
        let subscribers = try await subscriberConnections(admin)
        #expect(subscribers.count == 1, "CLIENT LIST: \(subscribers)")
        #expect(subscribers.first?.contains("sub=50 ") == true, "CLIENT LIST: \(subscribers)")
        let rooms = (0..<50).map { "room-\($0)" }
        #expect(try await numberOfSubscribers(admin, rooms) == Array(repeating: 1, count: 50))

        try await broker.publish(ByteBuffer(string: "hello"), to: "room-7")
        #expect(await eventually { inbox.totalMessages == 20 })
        #expect((0..<1000).filter { inbox.messages($0) == ["hello"] } == (0..<1000).filter { $0 % 50 == 7 })

        // Half of room-0's subscribers leave: still subscribed. All leave: unsubscribed.
        for index in stride(from: 0, to: 1000, by: 100) { subscriptions[index].cancel() }
        try await Task.sleep(for: .milliseconds(100))
        #expect(try await numberOfSubscribers(admin, ["room-0"]) == [1])
        subscriptions.removeAll()
        #expect(try await eventually { try await numberOfSubscribers(admin, rooms) == Array(repeating: 0, count: 50) })
        #expect(try await broker.subscribedChannels.isEmpty)
        await admin.close()
        await broker.shutdown()
    }

    @Test("redis-cli PUBLISH reaches Switchboard subscribers; Switchboard's publish reaches redis-cli SUBSCRIBE")
    func interoperatesWithRedisCLI() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let broker = try await self.makeBroker(redis)
        let inbox = Inbox()
        let subscription = try await broker.subscribe(to: "chat", on: self.group.next(), handler: inbox.handler())
        let published = try await runRedisCLI(port: redis.port, ["PUBLISH", "chat", "from redis-cli"])
        #expect(published.trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        #expect(await eventually { inbox.messages() == ["from redis-cli"] })

        // redis-cli SUBSCRIBE prints each message as three lines: "message", the channel, the payload.
        let cli = try RedisCLISubscriber(port: redis.port, channel: "news")
        defer { cli.stop() }
        let admin = try await redis.connect()
        #expect(try await eventually { try await numberOfSubscribers(admin, ["news"]) == [1] })
        try await broker.publish(ByteBuffer(string: "from switchboard"), to: "news")
        #expect(await eventually { cli.output.contains("message\nnews\nfrom switchboard") }, "\(cli.output)")
        withExtendedLifetime(subscription) {}
        await admin.close()
        await broker.shutdown()
    }

    @Test(
        "Redis killed mid-stream and restarted: publishes fail fast, subscriptions (loop and direct) come back with a gap"
    )
    func redisRestart() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let broker = try await self.makeBroker(redis)
        let inbox = Inbox()
        var subscriptions: [Subscription] = []
        for id in 0..<30 {
            // Half on a loop of their choice, half direct (on the subscriber connection's loop, as Topics does).
            subscriptions.append(
                id.isMultiple(of: 2)
                    ? try await broker.subscribe(to: "ch-\(id % 3)", on: self.group.next(), handler: inbox.handler(id))
                    : try await broker.subscribeDirect(to: "ch-\(id % 3)", handler: inbox.handler(id))
            )
        }
        for n in 0..<20 { try await broker.publish(ByteBuffer(string: "before-\(n)"), to: "ch-\(n % 3)") }
        #expect(await eventually { inbox.totalMessages == 200 })

        await redis.kill()
        // Every publish during the outage fails quickly with a clear error: no hang, no queue.
        for n in 0..<20 {
            let start = ContinuousClock.now
            await #expect {
                try await broker.publish(ByteBuffer(string: "during-\(n)"), to: "ch-0")
            } throws: { error in
                guard let error = error as? RedisError else { return false }
                return error.kind == .connectionUnavailable || error.kind == .connectionClosed
            }
            // Well under the 3 s command timeout and the 5 s connect timeout that a hang or a queue would meet; more
            // than half a second, which a loaded machine (the suite in parallel on two cores) exceeded now and then.
            #expect(ContinuousClock.now - start < .seconds(2))
            try await Task.sleep(for: .milliseconds(20))
        }

        try await redis.restart()
        let restarted = ContinuousClock.now
        let admin = try await redis.connect()
        let back = try await eventually(timeout: .seconds(2)) {
            try await numberOfSubscribers(admin, ["ch-0", "ch-1", "ch-2"]) == [1, 1, 1]
        }
        #expect(back, "subscriptions restored \(ContinuousClock.now - restarted) after Redis restarted")
        #expect(await eventually { (0..<30).allSatisfy { inbox.gaps($0) == 1 } }, "every subscriber sees one gap")
        #expect(await broker.waitUntilConnected(timeout: .seconds(2)))

        for n in 0..<3 { try await broker.publish(ByteBuffer(string: "after-\(n)"), to: "ch-\(n)") }
        #expect(await eventually { inbox.totalMessages == 230 })
        for id in 0..<30 {
            #expect(inbox.messages(id).last == "after-\(id % 3)", "subscriber \(id) was not lost")
            #expect(!inbox.messages(id).contains { $0.hasPrefix("during") })
        }
        withExtendedLifetime(subscriptions) {}
        await admin.close()
        await broker.shutdown()
    }

    @Test("Redis unreachable at start: subscribing works locally and reaches Redis once it is up, with a gap event")
    func startsWithoutRedis() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        await redis.kill()
        let broker = RedisBroker(
            configuration: redis.configuration(commandTimeout: .seconds(1)),
            eventLoopGroup: self.group,
            logger: redisTestLogger
        )
        broker.start()
        let inbox = Inbox()
        let subscription = try await broker.subscribe(to: "late", on: self.group.next(), handler: inbox.handler())
        await #expect(throws: RedisError.self) { try await broker.publish(ByteBuffer(string: "x"), to: "late") }

        try await redis.restart()
        #expect(await broker.waitUntilConnected(timeout: .seconds(3)))
        #expect(await eventually { inbox.gaps() == 1 })
        try await broker.publish(ByteBuffer(string: "now"), to: "late")
        #expect(await eventually { inbox.messages() == ["now"] })
        withExtendedLifetime(subscription) {}
        await broker.shutdown()
    }
}

/// Runs `redis-cli -p port args…` and returns its output.
private func runRedisCLI(port: Int, _ arguments: [String]) async throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["redis-cli", "-p", String(port)] + arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    // Sleeping, not blocking: tests share a cooperative pool of one thread per core. The output fits the pipe.
    while process.isRunning { try await Task.sleep(for: .milliseconds(5)) }
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    return String(decoding: data, as: UTF8.self)
}

/// `redis-cli SUBSCRIBE channel` running in the background, its output collected.
private final class RedisCLISubscriber: Sendable {
    private final class Output: Sendable {
        let text = Locked("")
    }

    private let process: Process
    private let collected = Output()

    var output: String { self.collected.text.withLock { $0 } }

    init(port: Int, channel: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["redis-cli", "-p", String(port), "SUBSCRIBE", channel]
        let pipe = Pipe()
        process.standardOutput = pipe
        self.process = process
        let collected = self.collected
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let text = String(decoding: handle.availableData, as: UTF8.self)
            collected.text.withLock { $0 += text }
        }
        try process.run()
    }

    func stop() {
        self.process.terminate()
    }
}
