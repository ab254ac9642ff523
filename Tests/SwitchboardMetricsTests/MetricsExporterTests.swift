import NIOCore
import NIOPosix
import Switchboard
import SwitchboardApi
import SwitchboardHTTPClient
import SwitchboardMetrics
import SwitchboardNode
import SwitchboardPubSub
import SwitchboardRooms
import SwitchboardServer
import SwitchboardTesting
import SwitchboardTopics
import SwitchboardWebhooks
import Testing

/// Prometheus text as `name{labels}` → value; comments skipped.
private func samples(_ text: String) -> [String: Double] {
    var samples: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
            continue
        }
        samples[String(line[..<space])] = value
    }
    return samples
}

private func scrape(port: Int) async throws -> (TestResponse, [String: Double]) {
    try await RawClient.withConnection(port: port) { client in
        try await client.send("GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        let response = try await client.readResponse()
        return (response, samples(response.body))
    }
}

@Suite("Prometheus metrics", .timeLimit(.minutes(1)))
struct MetricsExporterTests {
    @Test("After a scripted scenario, /metrics shows exactly what happened, and scraping again adds nothing")
    func scenario() async throws {
        let exporter = MetricsExporter()
        let counters = ChatCounters()
        let topics = Topics(broker: LocalBroker(), logger: testLogger, metricsFactory: exporter.factory)
        exporter.observe(topics: topics, chat: counters)
        let app = ChatApplication.make(
            topics: topics, configuration: ChatConfiguration(allowedOrigins: ["http://t"]), counters: counters,
            logger: testLogger)
        try await withServer(app) { server, port in
            exporter.observe(server: server)
            for _ in 0..<2 {
                try await RawClient.withConnection(port: port) { client in
                    try await client.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
                    #expect(try await client.readResponse().status == 200)
                }
            }
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /subscribe/bad%20name HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.readResponse().status == 400)
            }
            try await RawClient.withConnection(port: port) { evil in
                let refused = try await evil.handshake(path: "/chat", headers: ["Origin: http://evil"])
                #expect(refused.status == 403)
            }
            try await RawClient.withConnection(port: port) { alice in
                #expect(try await alice.handshake(path: "/chat").status == 101)
                try await RawClient.withConnection(port: port) { bob in
                    #expect(try await bob.handshake(path: "/chat").status == 101)
                    try await alice.send(clientFrame(0x1, text: "hello"))
                    #expect(try await alice.readFrame()?.text == "hello")
                    #expect(try await bob.readFrame()?.text == "hello")
                    try await bob.send(clientFrame(0x8, closePayload(1000)))
                    #expect(try await bob.readFrame()?.closeCode == 1000)
                }
                try await withServer(MetricsEndpoint(exporter: exporter)) { _, metricsPort in
                    // Bob's close is counted when the server's side of it finishes.
                    #expect(
                        await eventually {
                            (try? await scrape(port: metricsPort).1)?[#"switchboard_connections{endpoint="chat"}"#]
                                == 1
                        })
                    let (response, first) = try await scrape(port: metricsPort)
                    #expect(response.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
                    let expected: [String: Double] = [
                        #"switchboard_http_requests_total{route="/healthz",status="200"}"#: 2,
                        #"switchboard_http_requests_total{route="/subscribe/:channel",status="400"}"#: 1,
                        #"switchboard_http_requests_total{route="/chat",status="101"}"#: 2,
                        #"switchboard_http_requests_total{route="/chat",status="403"}"#: 1,
                        #"switchboard_refusals_total{reason="origin"}"#: 1,
                        #"switchboard_connections{endpoint="chat"}"#: 1,
                        #"switchboard_handshakes_accepted_total{endpoint="chat"}"#: 2,
                        #"switchboard_messages_received_total{endpoint="chat"}"#: 1,
                        #"switchboard_received_bytes_total{endpoint="chat"}"#: 5,
                        #"switchboard_fanout_deliveries_total"#: 2,
                        // Two unmasked frames of 2 + 5 bytes.
                        #"switchboard_fanout_delivered_bytes_total"#: 14,
                        #"switchboard_websocket_closes_total{endpoint="chat",code="1000"}"#: 1,
                        #"switchboard_topics"#: 1,
                        #"switchboard_topic_members"#: 1,
                        #"switchboard_connections_http"#: 1,
                    ]
                    for (name, value) in expected.sorted(by: { $0.key < $1.key }) {
                        #expect(first[name] == value, "\(name)")
                    }
                    // The message reached both sockets from one or two event loops: one lag sample per loop.
                    let lagSamples = first["switchboard_fanout_lag_seconds_count"] ?? 0
                    #expect(lagSamples >= 1 && lagSamples <= 2, "\(lagSamples)")
                    #expect((first["process_open_fds"] ?? 0) > 0 && (first["process_resident_memory_bytes"] ?? 0) > 0)
                    let (_, second) = try await scrape(port: metricsPort)
                    for (name, value) in expected {
                        #expect(second[name] == value, "a second scrape adds nothing: \(name)")
                    }
                }
            }
        }
    }

    @Test("Webhook outcomes: a queue past its bound counts each event it drops, exactly")
    func webhookOverflow() async throws {
        let dispatcher = WebhookDispatcher(
            configuration: WebhookConfiguration(
                urls: [OutboundURL("http://127.0.0.1:9/hook")!], secret: "metrics-test-secret-0123", maxQueued: 1),
            client: HTTPClient(group: MultiThreadedEventLoopGroup.singleton, logger: testLogger), logger: testLogger)
        let exporter = MetricsExporter()
        exporter.observe(webhooks: dispatcher)
        // Not running: the queue holds the first event and drops the other two.
        for _ in 0..<3 { dispatcher.send(WebhookEvent(name: .connect, socket: "s")) }
        let text = String(decoding: await exporter.render(), as: UTF8.self)
        #expect(text.contains(#"switchboard_webhook_events_total{outcome="overflowed"} 2"#), "\(text)")
        #expect(text.contains(#"switchboard_webhook_events_total{outcome="delivered"} 0"#))
    }

    @Test("The metrics port answers only GET /metrics")
    func otherPaths() async throws {
        try await withServer(MetricsEndpoint(exporter: MetricsExporter())) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.readResponse().status == 404)
                try await client.send("POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
                let refused = try await client.readResponse()
                #expect(refused.status == 405 && refused.header("Allow") == "GET, HEAD")
            }
        }
    }

    @Test("64 connections that send nothing hold the metrics port for 5 s at most; then Prometheus is answered")
    func idleConnectionsDoNotHoldThePort() async throws {
        let exporter = MetricsExporter()
        let configuration = MetricsEndpoint.serverConfiguration(host: "127.0.0.1", port: 0)
        try await withServer(MetricsEndpoint(exporter: exporter), configuration: configuration) { server, port in
            var idle: [any Channel] = []
            for _ in 0..<64 {
                idle.append(
                    try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                        .connect(host: "127.0.0.1", port: port).get())
            }
            // The clients never close them; the server does, after 5 s, and Prometheus is answered again.
            let answered = await eventually(timeout: .seconds(12)) {
                (try? await scrape(port: port).0.status) == 200 && server.statistics.openConnections <= 1
            }
            #expect(answered)
            for channel in idle { channel.close(promise: nil) }
        }
    }
}
