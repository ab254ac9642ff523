import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Switchboard
import SwitchboardApi
import SwitchboardNode
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardRooms
import SwitchboardTesting
import SwitchboardTopics
import Testing

private let token = "0123456789abcdef-test-token"

private func chatApp(
    broker: any Broker = LocalBroker(), publishToken: String? = token,
    configuration: ChatConfiguration = ChatConfiguration(allowedOrigins: ["http://t"])
) -> ChatApplication {
    var configuration = configuration
    configuration.publishToken = publishToken
    configuration.maxPublishSize = 1024
    return ChatApplication.make(
        topics: Topics(broker: broker, logger: testLogger), configuration: configuration, logger: testLogger)
}

extension RawClient {
    /// Sends `POST /publish/{channel}` and reads the response.
    fileprivate func publish(
        _ body: [UInt8],
        to channel: String,
        authorization: String? = "Bearer \(token)"
    ) async throws -> TestResponse {
        var head = "POST /publish/\(channel) HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.count)\r\n"
        head += "Content-Type: text/plain\r\n"
        if let authorization { head += "Authorization: \(authorization)\r\n" }
        try await self.send(head + "\r\n")
        try await self.send(ByteBuffer(bytes: body))
        return try await self.readResponse()
    }
}

@Suite("Chat server", .timeLimit(.minutes(1)))
struct ChatServerTests {
    @Test("/chat: a client's first message comes back to it; every message reaches every socket, sender included")
    func chat() async throws {
        try await withServer(chatApp()) { _, port in
            try await RawClient.withConnection(port: port) { alice in
                #expect(try await alice.handshake(path: "/chat").status == 101)
                // Subscribed before the 101: the very first message, sent at once, comes back.
                try await alice.send(clientFrame(0x1, text: "first"))
                #expect(try await alice.readFrame()?.text == "first")
                try await RawClient.withConnection(port: port) { bob in
                    #expect(try await bob.handshake(path: "/chat").status == 101)
                    try await bob.send(clientFrame(0x1, text: "bob is here"))
                    #expect(try await bob.readFrame()?.text == "bob is here")
                    #expect(try await alice.readFrame()?.text == "bob is here")
                    try await alice.send(clientFrame(0x1, text: "hello <img src=x onerror=alert(1)>"))
                    #expect(try await alice.readFrame()?.text == "hello <img src=x onerror=alert(1)>")
                    #expect(try await bob.readFrame()?.text == "hello <img src=x onerror=alert(1)>")
                    try await bob.send(clientFrame(0x8, closePayload(1000)))
                    #expect(try await bob.readFrame()?.closeCode == 1000)
                }
                try await alice.send(clientFrame(0x1, text: "alone now"))
                #expect(try await alice.readFrame()?.text == "alone now")
                // The seed's protocol is text: a binary message closes with 1003.
                try await alice.send(clientFrame(0x2, [1, 2, 3]))
                #expect(try await alice.readFrame()?.closeCode == 1003)
            }
        }
    }

    @Test("/chat: a message over the size limit closes with 1009; a foreign browser origin is refused with 403")
    func limits() async throws {
        try await withServer(chatApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                #expect(try await client.handshake(path: "/chat").status == 101)
                try await client.send(clientFrame(0x1, [UInt8](repeating: 65, count: 70_000)))
                #expect(try await client.readFrame()?.closeCode == 1009)
            }
            try await RawClient.withConnection(port: port) { client in
                let response = try await client.handshake(path: "/chat", headers: ["Origin: https://evil.example"])
                #expect(response.status == 403)
            }
            try await RawClient.withConnection(port: port) { client in
                let status81 = try await client.handshake(path: "/chat", headers: ["Origin: http://t"]).status
                #expect(status81 == 101)
            }
        }
    }

    @Test("Origins: only configured ones, never the request's own Host (DNS rebinding); no Origin is not a browser")
    func origins() async throws {
        try await withServer(chatApp()) { _, port in
            for path in ["/chat", "/subscribe/news", "/ws"] {
                let protocolHeader = path == "/ws" ? ["Sec-WebSocket-Protocol: switchboard.chat.v1"] : []
                // A rebinding page: its Origin and the Host it reaches us by are the attacker's name.
                let rebound = try await RawClient.withConnection(port: port) { client in
                    try await client.handshake(
                        path: path,
                        headers: ["Origin: http://rebind.attacker.test:\(port)", "Host: rebind.attacker.test:\(port)"]
                            + protocolHeader)
                }
                #expect(rebound.status == 403, "\(path)")
                let native = try await RawClient.withConnection(port: port) { client in
                    try await client.handshake(path: path, headers: protocolHeader)
                }
                #expect(native.status == 101, "\(path): a client without Origin is not a browser")
            }
        }
        let strict = ChatConfiguration(allowedOrigins: ["http://t"], requiresOrigin: true)
        try await withServer(chatApp(configuration: strict)) { _, port in
            let native = try await RawClient.withConnection(port: port) { try await $0.handshake(path: "/chat") }
            #expect(native.status == 403)
            let page = try await RawClient.withConnection(port: port) { client in
                try await client.handshake(path: "/chat", headers: ["Origin: http://t"])
            }
            #expect(page.status == 101)
        }
    }

    @Test("/echo is served only when configured (a conformance endpoint: 16 MiB messages); origins are checked")
    func echoOnlyWhenAsked() async throws {
        try await withServer(chatApp()) { _, port in
            let response = try await RawClient.withConnection(port: port) { try await $0.handshake(path: "/echo") }
            #expect(response.status == 404)
        }
        try await withServer(chatApp(configuration: ChatConfiguration(servesEcho: true))) { _, port in
            try await RawClient.withConnection(port: port) { client in
                #expect(try await client.handshake(path: "/echo").status == 101)
                try await client.send(clientFrame(0x1, text: "ping"))
                #expect(try await client.readFrame()?.text == "ping")
            }
            let foreign = try await RawClient.withConnection(port: port) {
                try await $0.handshake(path: "/echo", headers: ["Origin: https://evil.example"]).status
            }
            #expect(foreign == 403)
        }
    }

    @Test("POST /publish/{channel} reaches /subscribe/{channel} sockets, and only them")
    func publishAndSubscribe() async throws {
        try await withServer(chatApp()) { _, port in
            try await RawClient.withConnection(port: port) { news in
                #expect(try await news.handshake(path: "/subscribe/news").status == 101)
                try await RawClient.withConnection(port: port) { sports in
                    #expect(try await sports.handshake(path: "/subscribe/sports").status == 101)
                    try await RawClient.withConnection(port: port) { publisher in
                        let json = Array(#"{"headline":"Swift 7 released","id":1}"#.utf8)
                        let status95 = try await publisher.publish(json, to: "news").status
                        #expect(status95 == 204)
                        let status96 = try await publisher.publish(Array("goal!".utf8), to: "sports").status
                        #expect(status96 == 204)
                    }
                    #expect(try await news.readFrame()?.text == #"{"headline":"Swift 7 released","id":1}"#)
                    #expect(try await sports.readFrame()?.text == "goal!")
                    // Receive-only: sending closes with 1008.
                    try await sports.send(clientFrame(0x1, text: "hi"))
                    #expect(try await sports.readFrame()?.closeCode == 1008)
                }
            }
        }
    }

    @Test("A loop that fell behind sends its backlog in order; past the backlog cap it drops and says so (1013)")
    func backlog() async throws {
        // The sockets get a loop of their own that the test can hold; the broker delivers from the test's thread.
        let socketLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let broker = LocalBroker()
        let topics = Topics(broker: broker, configuration: .init(maxBacklogBytes: 1000), logger: testLogger)
        let app = ChatApplication.make(topics: topics, logger: testLogger)
        try await withServer(app, eventLoopGroup: socketLoop) { _, port in
            try await RawClient.withConnection(port: port) { client in
                #expect(try await client.handshake(path: "/subscribe/news").status == 101)
                let gate = ConditionLock(value: 0)
                socketLoop.next().execute {
                    gate.lock(whenValue: 1)
                    gate.unlock()
                }
                // 30 messages of 100 bytes while the sockets' loop is held: 10 fit under the 1,000-byte cap.
                for i in 0..<30 {
                    try await broker.publish(
                        ByteBuffer(string: String(format: "%03d", i) + String(repeating: ".", count: 97)), to: "news")
                }
                // LocalBroker delivers inline: every publish has reached the loop's mailbox by now.
                gate.lock()
                gate.unlock(withValue: 1)
                for i in 0..<10 {
                    let frame = try #require(try await client.readFrame())
                    #expect(frame.text.prefix(3) == String(format: "%03d", i))
                }
                // Messages 10-29 were dropped, not queued, and the client is told: /subscribe has no message for
                // that, so its socket is closed with 1013 (try again later) and it reconnects.
                #expect(try await client.readFrame()?.closeCode == 1013)
            }
        }
        try await socketLoop.shutdownGracefully()
    }

    @Test("The publish API's errors: 401 without or with a wrong token, 413, 400, 415; 404 when it is off")
    func publishErrors() async throws {
        try await withServer(chatApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                let missing = try await client.publish(Array("x".utf8), to: "news", authorization: nil)
                #expect(missing.status == 401)
                #expect(missing.headers.contains { $0.0.lowercased() == "www-authenticate" && $0.1 == "Bearer" })
                let wrong = try await client.publish(Array("x".utf8), to: "news", authorization: "Bearer nope")
                #expect(wrong.status == 401)
                #expect(try await client.publish(Array("x".utf8), to: "bad%20name").status == 400)
                #expect(try await client.publish([], to: "news").status == 400)
                #expect(try await client.publish([0xC3, 0x28], to: "news").status == 415)
            }
            try await RawClient.withConnection(port: port) { client in
                let status122 = try await client.publish([UInt8](repeating: 65, count: 2000), to: "news").status
                #expect(status122 == 413)
            }
            try await RawClient.withConnection(port: port) { client in
                let status125 = try await client.handshake(path: "/subscribe/a%20b").status
                #expect(status125 == 400)
            }
        }
        try await withServer(chatApp(publishToken: nil)) { _, port in
            try await RawClient.withConnection(port: port) { client in
                let status130 = try await client.publish(Array("x".utf8), to: "news").status
                #expect(status130 == 404)
            }
        }
    }

    @Test("GET / serves the page with security headers; /healthz is liveness, /readyz the broker's readiness")
    func pageAndHealth() async throws {
        try await withServer(chatApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                for (path, needle) in [
                    ("/", "<h1>Switchboard chat</h1>"), ("/app.js", "textContent"), ("/app.css", "@media"),
                    ("/healthz", #"{"status":"ok"}"#), ("/readyz", #""status":"ready""#),
                ] {
                    try await client.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n")
                    let response = try await client.readResponse()
                    #expect(response.status == 200, "\(path)")
                    #expect(response.body.contains(needle), "\(path)")
                }
                // The page never inserts messages as HTML, runs no inline script and cannot be framed.
                try await client.send("GET /app.js HTTP/1.1\r\nHost: t\r\n\r\n")
                let script = try await client.readResponse()
                #expect(!script.body.contains("innerHTML"))
                try await client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                let page = try await client.readResponse()
                let policy = page.header("Content-Security-Policy") ?? ""
                #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"))
                #expect(policy.contains("frame-ancestors 'none'"))
                #expect(page.header("X-Content-Type-Options") == "nosniff")
                #expect(!page.body.contains("<script>") && !page.body.contains("<style>"), "nothing inline")
            }
        }
    }
}

@Suite(
    "Chat server on Redis: two nodes",
    .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason)),
    .timeLimit(.minutes(1))
)
struct ChatServerRedisTests {
    @Test("Clients on node A and node B chat together; a publish on A reaches B; B keeps working when A stops")
    func twoNodes() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let brokerA = try await redis.connectedBroker()
        let brokerB = try await redis.connectedBroker()
        try await withServer(chatApp(broker: brokerB)) { _, portB in
            try await withServer(chatApp(broker: brokerA)) { _, portA in
                try await RawClient.withConnection(port: portB) { bob in
                    #expect(try await bob.handshake(path: "/chat").status == 101)
                    try await RawClient.withConnection(port: portB) { watcher in
                        #expect(try await watcher.handshake(path: "/subscribe/alerts").status == 101)
                        try await RawClient.withConnection(port: portA) { alice in
                            #expect(try await alice.handshake(path: "/chat").status == 101)
                            try await alice.send(clientFrame(0x1, text: "alice on A"))
                            #expect(try await alice.readFrame()?.text == "alice on A")
                            #expect(try await bob.readFrame()?.text == "alice on A")
                            try await bob.send(clientFrame(0x1, text: "bob on B"))
                            #expect(try await bob.readFrame()?.text == "bob on B")
                            #expect(try await alice.readFrame()?.text == "bob on B")
                        }
                        try await RawClient.withConnection(port: portA) { publisher in
                            let response = try await publisher.publish(Array("disk full".utf8), to: "alerts")
                            #expect(response.status == 204)
                        }
                        #expect(try await watcher.readFrame()?.text == "disk full")
                        // Node A loses its broker (as if killed): B's clients carry on.
                        await brokerA.shutdown()
                        try await bob.send(clientFrame(0x1, text: "still here"))
                        #expect(try await bob.readFrame()?.text == "still here")
                    }
                }
            }
        }
        await brokerB.shutdown()
    }
}
