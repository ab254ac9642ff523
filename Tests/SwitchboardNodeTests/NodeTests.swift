import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import ServiceLifecycleTestKit
import Switchboard
import SwitchboardHTTPClient
import SwitchboardNode
import SwitchboardRedis
import SwitchboardRoomsRedis
import SwitchboardTesting
import SwitchboardTopics
import SwitchboardWebhooks
import Testing

// The example of the DocC article "Broadcasting from your app" (SwitchboardTopics.docc), a whole node around an app's
// routes, verbatim between the markers (.ci/run checks that the article holds it).
// NODE-EXAMPLE-BEGIN
/// A node of your own: the chat, and your routes beside it on the node's topics.
func ordersNode(configuration: NodeConfiguration, logger: Logger) async throws -> Node {
    try await Node(configuration: configuration, logger: logger) { router, topics in
        router.post("/orders/:id/ship") { request in
            let update = ByteBuffer(string: #"{"state":"shipped"}"#)
            try await topics.publish(update, to: "orders.\(request.parameters["id"] ?? "")")
            return Response(status: .noContent)
        }
    }
}
// NODE-EXAMPLE-END

/// A node on 127.0.0.1 and a free port, running for `body`, then shut down gracefully (if `body` did not); `body` gets
/// the node, its port and what shuts it down.
private func withNode(
    _ configuration: NodeConfiguration,
    _ body: @escaping @Sendable (Node, Int, _ shutDown: @Sendable () -> Void) async throws -> Void
) async throws {
    var configuration = configuration
    configuration.server.port = 0
    let node = try await ordersNode(configuration: configuration, logger: testLogger)
    try await testGracefulShutdown { trigger in
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await node.run() }
            let port = try #require(try await node.listeningAddress().port)
            try await body(node, port) { trigger.triggerGracefulShutdown() }
            trigger.triggerGracefulShutdown()
            try await group.waitForAll()
        }
    }
}

@Suite("The node: built from its configuration, its services in order", .timeLimit(.minutes(1)))
struct NodeTests {
    @Test("Embedded: the page, the health check and the app's own route, which publishes to a /subscribe socket")
    func embedded() async throws {
        var configuration = NodeConfiguration()
        configuration.chat.allowedOrigins = ["http://t"]
        try await withNode(configuration) { node, port, _ in
            #expect(node.serviceNames == ["http client", "presence", "cluster survey", "server", "announcer"])
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                let page = try await client.readResponse()
                #expect(page.status == 200 && page.body.contains("<h1>Switchboard chat</h1>"))
                try await client.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.readResponse().body == #"{"status":"ok"}"# + "\n")
            }
            try await RawClient.withConnection(port: port) { watcher in
                #expect(try await watcher.handshake(path: "/subscribe/orders.1042").status == 101)
                #expect(await eventually { node.topics.memberCount(of: "orders.1042") == 1 })
                let shipped = try await RawClient.withConnection(port: port) { shop in
                    try await shop.send("POST /orders/1042/ship HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
                    return try await shop.readResponse().status
                }
                #expect(shipped == 204)
                #expect(try await watcher.readFrame()?.text == #"{"state":"shipped"}"#)
            }
        }
    }

    @Test(
        "With Redis, webhooks and metrics: the services in order; at shutdown presence leaves while Redis still runs",
        .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason)))
    func redisServiceOrder() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        var configuration = NodeConfiguration()
        configuration.redis.configuration = RedisConfiguration(host: "127.0.0.1", port: redis.port)
        configuration.metrics.port = 0
        configuration.webhooks.urls = [try #require(.init("http://127.0.0.1:9/hook"))]
        configuration.webhooks.secret = "a-webhook-secret-0123456789"
        let admin = RedisClient(
            configuration: RedisConfiguration(host: "127.0.0.1", port: redis.port),
            eventLoop: MultiThreadedEventLoopGroup.singleton.next(), logger: testLogger)
        admin.start()
        try await withNode(configuration) { node, port, shutDown in
            #expect(
                node.serviceNames == [
                    "redis client", "redis broker", "http client", "webhook dispatcher", "redis presence",
                    "cluster survey", "redis report", "metrics server", "metrics announcer", "server", "announcer",
                ])
            try await RawClient.withConnection(port: port) { client in
                try await client.openRooms()
                _ = try await client.join("lobby")
                #expect(try await admin.send(RESPCommand("ZCARD", RoomKeys.presence("lobby"))) == .integer(1))
                // Shut down with the socket in the room: the server goes first and closes it (1001).
                shutDown()
                var frame = try #require(try await client.readFrame())
                while frame.opcode != 0x8 { frame = try #require(try await client.readFrame()) }
                #expect(frame.closeCode == 1001)
            }
        }
        // In reverse order: the server closed its sockets, presence removed this node's members while the Redis
        // connection still ran, and the connections closed last. Nobody is left listed.
        #expect(try await admin.send(RESPCommand("ZCARD", RoomKeys.presence("lobby"))) == .integer(0))
        await admin.shutdown()
    }

    @Test("With Redis unreachable the node is not ready: /subscribe and /chat answer 503, not a socket that misses all")
    func notReady() async throws {
        // A port nothing listens on.
        let unused = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(unused.localAddress?.port)
        try await unused.close()
        var configuration = NodeConfiguration()
        configuration.redis.configuration = RedisConfiguration(host: "127.0.0.1", port: port)
        try await withNode(configuration) { _, nodePort, _ in
            for path in ["/subscribe/news", "/chat"] {
                let response = try await RawClient.withConnection(port: nodePort) { client in
                    try await client.handshake(path: path)
                }
                #expect(response.status == 503 && response.header("Retry-After") == "1", "\(path)")
            }
        }
    }
}
