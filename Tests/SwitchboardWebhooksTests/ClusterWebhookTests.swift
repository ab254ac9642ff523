import Foundation
import NIOCore
import NIOPosix
import Switchboard
import SwitchboardAuth
import SwitchboardChat
import SwitchboardChatRedis
import SwitchboardRedis
import SwitchboardTesting
import SwitchboardTopics
import Testing

@testable import SwitchboardWebhooks

/// A chat node on `redis` with webhooks counted in Redis, serving for `body`; stopped afterwards.
private func withRedisNode(
    _ redis: RedisServerProcess, hookPort: Int, _ body: @escaping @Sendable (Int) async throws -> Void
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
            urls: [WebhookURL("http://127.0.0.1:\(hookPort)/hook")!], secret: "the-webhook-tests-hmac-secret",
            leaveDelay: .milliseconds(1000), firstRetryDelay: .milliseconds(50)),
        eventLoopGroup: group, logger: testLogger)
    let running = Task { try await dispatcher.run() }
    var chat = ChatConfiguration()
    chat.rateLimits = .unlimited
    chat.auth = ChatAuthentication(
        verifier: try await TokenVerifier(keys: [try .hmac(secret: clusterTokenSecret)]), allowsAnonymous: true)
    let app = ChatApplication.make(
        topics: Topics(broker: broker, logger: testLogger), configuration: chat,
        roomLog: RedisRoomLog(client: client, limits: chat.history),
        presence: RedisPresence(client: client, logger: testLogger),
        observer: RedisWebhookEvents(dispatcher: dispatcher, client: client, eventLoop: group.next()),
        logger: testLogger)
    do {
        try await withServer(app) { _, port in try await body(port) }
    } catch {
        running.cancel()
        await broker.shutdown()
        await client.shutdown()
        throw error
    }
    // Delayed events still due go out before the node stops.
    try await Task.sleep(for: .milliseconds(1500))
    running.cancel()
    await broker.shutdown()
    await client.shutdown()
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
            try await withRedisNode(redis, hookPort: hookPort) { portA in
                try await withRedisNode(redis, hookPort: hookPort) { portB in
                    try await RawClient.withConnection(port: portA) { onA in
                        try await onA.member(token: token, room: "lobby")
                        try await RawClient.withConnection(port: portB) { onB in
                            try await onB.member(token: token, room: "lobby")
                        }
                    }
                    // Alice left both; within the delay she is back, on node B.
                    try await RawClient.withConnection(port: portB) { back in
                        try await back.member(token: token, room: "lobby")
                        try await Task.sleep(for: .milliseconds(1500))
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
}
