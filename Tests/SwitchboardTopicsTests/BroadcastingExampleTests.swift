import HTTPTypes
import NIOCore
import NIOPosix
import Switchboard
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardTesting
import SwitchboardTopics
import SwitchboardWebSocket
import Testing

// The example of the DocC article "Broadcasting from your app" (SwitchboardTopics.docc), verbatim between the
// markers, so the article cannot drift from the API (.ci/run checks that the article holds it).
// BROADCASTING-EXAMPLE-BEGIN
/// Watch an order live over a WebSocket; shipping it tells every watcher, on every node.
func ordersApp(topics: Topics) -> some Application {
    var router = Router()
    router.get("/orders/:id/live") { request in
        // Subscribed before the handshake is answered: the socket misses nothing published from then on.
        let order = "orders.\(request.parameters["id"] ?? "")"
        let reservation = try await topics.reserve(order, on: request.eventLoop)
        return WebSocket.upgrade(request) { socket in reservation.attach(socket) }
    }
    router.post("/orders/:id/ship") { request in
        let update = ByteBuffer(string: #"{"state":"shipped"}"#)
        try await topics.publish(update, to: "orders.\(request.parameters["id"] ?? "")")
        return Response(status: .noContent)
    }
    return router
}
// BROADCASTING-EXAMPLE-END

extension RawClient {
    fileprivate func ship(_ order: Int) async throws -> Int {
        try await self.send("POST /orders/\(order)/ship HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        return try await self.readResponse().status
    }
}

@Suite("Broadcasting from your app (the DocC article's example)", .timeLimit(.minutes(1)))
struct BroadcastingExampleTests {
    @Test("Embedded: watchers of order 1042 get its update, watchers of another order do not; members come and go")
    func embedded() async throws {
        let topics = Topics(broker: LocalBroker(), logger: testLogger)
        try await withServer(ordersApp(topics: topics)) { _, port in
            try await RawClient.withConnection(port: port) { watcher in
                #expect(try await watcher.handshake(path: "/orders/1042/live").status == 101)
                try await RawClient.withConnection(port: port) { other in
                    #expect(try await other.handshake(path: "/orders/7/live").status == 101)
                    // The 101 goes out before the set-up closure attaches the socket: wait for the attachment.
                    #expect(await eventually { topics.memberCounts() == ["orders.1042": 1, "orders.7": 1] })
                    try await RawClient.withConnection(port: port) { shop in
                        let shipped = try await shop.ship(1042)
                        let unwatched = try await shop.ship(1)  // nobody watches order 1
                        #expect(shipped == 204 && unwatched == 204)
                    }
                    #expect(try await watcher.readFrame()?.text == #"{"state":"shipped"}"#)
                    try await other.send(clientFrame(0x8, closePayload(1000)))
                    #expect(try await other.readFrame()?.closeCode == 1000)
                }
                // A closed socket leaves its topic, and the topic goes with its last member.
                #expect(await eventually { topics.memberCounts() == ["orders.1042": 1] })
                // A refused handshake never attaches: its reservation is given back.
                try await RawClient.withConnection(port: port) { refused in
                    let response = try await refused.handshake(
                        path: "/orders/1042/live", headers: ["Sec-WebSocket-Version: 8"])
                    #expect(response.status == 426)
                }
                #expect(await eventually { topics.memberCounts() == ["orders.1042": 1] })
            }
            #expect(await eventually { topics.memberCounts().isEmpty })
        }
    }

    @Test(
        "With Redis: the same app on two nodes; shipping on node A reaches a watcher on node B",
        .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason))
    )
    func twoNodes() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let brokers = (0..<2).map { _ in
            RedisBroker(
                configuration: RedisConfiguration(host: "127.0.0.1", port: redis.port),
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton, logger: testLogger)
        }
        for broker in brokers { broker.start() }
        for broker in brokers { #expect(await broker.waitUntilConnected(timeout: .seconds(5))) }
        let nodeA = Topics(broker: brokers[0], logger: testLogger)
        let nodeB = Topics(broker: brokers[1], logger: testLogger)
        try await withServer(ordersApp(topics: nodeA)) { _, portA in
            try await withServer(ordersApp(topics: nodeB)) { _, portB in
                try await RawClient.withConnection(port: portB) { watcher in
                    #expect(try await watcher.handshake(path: "/orders/1042/live").status == 101)
                    let shipped = try await RawClient.withConnection(port: portA) { shop in try await shop.ship(1042) }
                    #expect(shipped == 204)
                    #expect(try await watcher.readFrame()?.text == #"{"state":"shipped"}"#)
                    #expect(try await brokers[1].subscribedChannels == ["orders.1042"])
                }
                #expect(await eventually { (try? await brokers[1].subscribedChannels.isEmpty) == true })
            }
        }
        for broker in brokers { await broker.shutdown() }
    }
}
