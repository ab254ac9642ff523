import Foundation
import NIOCore
import NIOPosix
import Switchboard
import SwitchboardApi
import SwitchboardAuth
import SwitchboardHTTPClient
import SwitchboardNode
import SwitchboardRedis
import SwitchboardRooms
import SwitchboardRoomsRedis
import SwitchboardTesting
import SwitchboardTopics
import Testing

@testable import SwitchboardWebhooks

/// A chat node on `redis` with webhooks counted in Redis, serving for `body`; stopped afterwards. With
/// `presenceTTL` its presence runs (heartbeats and sweeps) with that TTL. `body` gets the port and what crashes the
/// node: its command connection to Redis is cut, so what its sockets do from then on never reaches Redis.
private func withRedisNode(
    _ redis: RedisServerProcess, hookPort: Int, presenceTTL: Duration? = nil,
    _ body: @escaping @Sendable (Int, _ crash: @escaping @Sendable () async -> Void) async throws -> Void
) async throws {
    let group = MultiThreadedEventLoopGroup.singleton
    let client = RedisClient(
        configuration: RedisConfiguration(host: "127.0.0.1", port: redis.port), eventLoop: group.next(),
        logger: testLogger)
    let broker = RedisBroker(client: client, eventLoopGroup: group, logger: testLogger)
    client.start()
    broker.start()
    try #require(await broker.waitUntilConnected(timeout: .seconds(5)))
    let dispatcher = WebhookDispatcher(
        configuration: WebhookConfiguration(
            urls: [OutboundURL("http://127.0.0.1:\(hookPort)/hook")!], secret: "the-webhook-tests-hmac-secret",
            leaveDelay: .milliseconds(2000), firstRetryDelay: .milliseconds(50)),
        client: HTTPClient(group: group, logger: testLogger), logger: testLogger)
    let running = Task { try await dispatcher.run() }
    var chat = ChatConfiguration()
    chat.rateLimits = .unlimited
    chat.auth = ChatAuthentication(
        verifier: try await TokenVerifier(keys: [try .hmac(secret: clusterTokenSecret)]), allowsAnonymous: true)
    let observer = WebhookEvents(dispatcher: dispatcher)
    let presence = RedisPresence(
        redis: client, ttl: presenceTTL ?? .seconds(30), observer: observer, leaveDelay: .milliseconds(2000),
        logger: testLogger)
    // Heartbeats (with a short TTL) and the poll for due leaves.
    let heartbeats = Task { try await presence.run() }
    let app = ChatApplication.make(
        topics: Topics(broker: broker, logger: testLogger), configuration: chat,
        roomLog: RedisRoomLog(redis: client, limits: chat.history),
        presence: presence, observer: observer, logger: testLogger)
    let stop = { @Sendable in
        heartbeats.cancel()
        _ = await heartbeats.result
        running.cancel()
        await broker.shutdown()
        await client.shutdown()
    }
    do {
        try await withServer(app, services: app.services) { _, port in
            try await body(port) { await client.shutdown() }
        }
    } catch {
        await stop()
        throw error
    }
    // Delayed events still due go out before the node stops.
    try await Task.sleep(for: .milliseconds(2500))
    await stop()
}

/// How many leaves wait in Redis for their delay (polled until two do, or 5 s).
private func dueLeaves(_ redis: RedisServerProcess) async throws -> Int {
    let client = RedisClient(
        configuration: RedisConfiguration(host: "127.0.0.1", port: redis.port),
        eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: testLogger)
    client.start()
    let deadline = ContinuousClock.now + .seconds(5)
    var count = 0
    while count != 2, ContinuousClock.now < deadline {
        // Every bucket of the due set (a room's leaves are in its bucket).
        var total = 0
        for bucket in 0..<RoomKeys.buckets {
            if case .integer(let due)? = try? await client.send(
                RESPCommand("ZCARD", RoomKeys.dueLeaves(bucket: bucket)))
            {
                total += Int(due)
            }
        }
        count = total
        try await Task.sleep(for: .milliseconds(10))
    }
    await client.shutdown()
    return count
}

private let clusterTokenSecret = "the-cluster-webhook-token-secret-of-32-bytes"

@Suite(
    "Webhooks across two nodes on Redis: each event once per cluster", .timeLimit(.minutes(1)),
    .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason)))
struct ClusterWebhookTests {
    @Test("Alice on both nodes: one occupied, one joined; a move between nodes within the delay is no event")
    func onceAcrossNodes() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let receiver = Receiver()
        let token = try await TokenIssuer.sign(
            .init(userID: "42", name: "Alice"), with: .hmac(secret: clusterTokenSecret))
        try await withServer(receiver.app) { _, hookPort in
            try await withRedisNode(redis, hookPort: hookPort) { portA, _ in
                try await withRedisNode(redis, hookPort: hookPort) { portB, _ in
                    try await RawClient.withConnection(port: portA) { onA in
                        try await onA.member(token: token, room: "lobby")
                        try await RawClient.withConnection(port: portB) { onB in
                            try await onB.member(token: token, room: "lobby")
                        }
                    }
                    // Alice left both; within the delay she is back, on node B.
                    try await RawClient.withConnection(port: portB) { back in
                        try await back.member(token: token, room: "lobby")
                        try await Task.sleep(for: .milliseconds(2500))
                        let names = describe(receiver.events()).filter {
                            !$0.hasPrefix("connect") && !$0.hasPrefix("disconnect")
                        }
                        #expect(names == ["room_occupied lobby", "member_joined lobby 42"], "\(names)")
                    }
                }
            }
        }
        let names = describe(receiver.events()).filter { !$0.hasPrefix("connect") && !$0.hasPrefix("disconnect") }
        #expect(
            names == ["room_occupied lobby", "member_joined lobby 42", "member_left lobby 42", "room_vacated lobby"],
            "\(names)")
        #expect(receiver.events().filter { $0["name"] as? String == "connect" }.count == 3, "each socket's own node")
    }

    @Test(
        "A node that crashes: its members leave and its rooms empty once presence expires them, sent once by a node still up"
    )
    func crashedNode() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let receiver = Receiver()
        let key = TokenIssuer.SigningKey.hmac(secret: clusterTokenSecret)
        let alice = try await TokenIssuer.sign(.init(userID: "42", name: "Alice"), with: key)
        let bob = try await TokenIssuer.sign(.init(userID: "7", name: "Bob"), with: key)
        let carol = try await TokenIssuer.sign(.init(userID: "9", name: "Carol"), with: key)
        let crashEvents = ["member_left attic 9", "member_left lobby 42", "room_vacated attic"]
        try await withServer(receiver.app) { _, hookPort in
            try await withRedisNode(redis, hookPort: hookPort, presenceTTL: .seconds(1)) { portB, _ in
                try await RawClient.withConnection(port: portB) { bobOnB in
                    try await bobOnB.member(token: bob, room: "lobby")
                    try await withRedisNode(redis, hookPort: hookPort, presenceTTL: .seconds(1)) { portA, crashA in
                        try await RawClient.withConnection(port: portA) { aliceOnA in
                            try await aliceOnA.member(token: alice, room: "lobby")
                            try await RawClient.withConnection(port: portA) { carolOnA in
                                try await carolOnA.member(token: carol, room: "attic")
                                try await Task.sleep(for: .milliseconds(200))
                                await crashA()
                            }
                        }
                    }
                    // Node A's leaves never reached Redis. Node B sweeps lobby (Bob is there) and attic (nobody
                    // is: the index) once the entries expire, and sends the leaves after the delay.
                    let swept = await eventually(timeout: .seconds(10)) {
                        Set(describe(receiver.events())).isSuperset(of: crashEvents)
                    }
                    #expect(swept, "\(describe(receiver.events()))")
                }
            }
        }
        let names = describe(receiver.events()).filter { !$0.hasPrefix("connect") && !$0.hasPrefix("disconnect") }
        #expect(
            Array(names.prefix(5)) == [
                "room_occupied lobby", "member_joined lobby 7", "member_joined lobby 42", "room_occupied attic",
                "member_joined attic 9",
            ], "\(names)")
        #expect(Set(names.dropFirst(5).prefix(3)) == Set(crashEvents), "\(names)")
        #expect(Array(names.dropFirst(8)) == ["member_left lobby 7", "room_vacated lobby"], "\(names)")
    }

    @Test("A node that crashes during a leave's delay: another node sends the leave when it is due")
    func crashDuringDelay() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let receiver = Receiver()
        let alice = try await TokenIssuer.sign(
            .init(userID: "42", name: "Alice"), with: .hmac(secret: clusterTokenSecret))
        try await withServer(receiver.app) { _, hookPort in
            try await withRedisNode(redis, hookPort: hookPort) { _, _ in
                try await withRedisNode(redis, hookPort: hookPort) { portA, crashA in
                    try await RawClient.withConnection(port: portA) { onA in
                        try await onA.member(token: alice, room: "lobby")
                    }
                    // Her leave is counted (and due in 2 s); node A goes before it is due.
                    let counted = try await dueLeaves(redis) == 2
                    #expect(counted, "the member's and the room's leave wait in the due set")
                    await crashA()
                    let sent = await eventually(timeout: .seconds(5)) {
                        describe(receiver.events()).contains("room_vacated lobby")
                    }
                    #expect(sent)
                }
            }
        }
        let names = describe(receiver.events()).filter { !$0.hasPrefix("connect") && !$0.hasPrefix("disconnect") }
        #expect(
            names == ["room_occupied lobby", "member_joined lobby 42", "member_left lobby 42", "room_vacated lobby"],
            "\(names)")
    }
}
