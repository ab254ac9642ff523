import NIOCore
import NIOPosix
import Switchboard
import SwitchboardLocks
import SwitchboardTesting
import Testing

@testable import SwitchboardServer

@Suite("Connection limits", .timeLimit(.minutes(1)))
struct ConnectionLimitTests {
    private let app = AnyApplication { _ in Response(body: .init(string: "served")) }

    /// A connection that only holds its place (never sends a byte).
    private func openIdle(port: Int) async throws -> any Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port).value()
    }

    private func get(port: Int) async throws -> TestResponse {
        try await RawClient.withConnection(port: port) { client in
            try await client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            return try await client.readResponse()
        }
    }

    @Test("Past maxConnections a new connection gets 503 with Retry-After and is closed; a freed place serves again")
    func nodeCap() async throws {
        var configuration = testConfiguration()
        configuration.maxConnections = 3
        try await withServer(self.app, configuration: configuration) { server, port in
            var idle: [any Channel] = []
            for _ in 0..<3 { idle.append(try await self.openIdle(port: port)) }
            // Connected is not yet accepted: the server must count them before the next one comes.
            #expect(await eventually { server.statistics.openConnections == 3 })
            // The refusal does not wait for a request: it is the whole answer, then the connection ends.
            try await RawClient.withConnection(port: port) { client in
                let response = try await client.readResponse()
                #expect(response.status == 503)
                #expect(response.header("Retry-After") == "5")
                #expect(response.body == "the server is at its connection limit; try again later\n")
                let rest = try await client.readToEnd()
                #expect(rest == "")
            }
            // A WebSocket handshake never reaches the app: 503, not 101.
            try await RawClient.withConnection(port: port) { client in
                let status = try await client.handshake(path: "/").status
                #expect(status == 503)
            }
            #expect(server.statistics.refusedForConnectionLimit == 2, "each refusal counted")
            try await idle.removeLast().close()
            #expect(await eventually { server.statistics.openConnections == 2 })
            #expect(try await self.get(port: port).status == 200)
            for channel in idle { try await channel.close() }
        }
    }

    @Test("A refused client that sends a 16 MiB upload before reading still reads the 503 (lingering close, no reset)")
    func lingeringRefusal() async throws {
        var configuration = testConfiguration()
        configuration.maxConnections = 1
        try await withServer(self.app, configuration: configuration) { server, port in
            let holder = try await self.openIdle(port: port)
            #expect(await eventually { server.statistics.openConnections == 1 })
            try await RawClient.withConnection(port: port) { client in
                // Far more than the socket buffers hold: the upload is still going when the 503 is written, so
                // closing at once would reset the connection under the client's feet.
                let body = ByteBuffer(repeating: UInt8(ascii: "x"), count: 16 * 1024 * 1024)
                try await client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.readableBytes)\r\n\r\n")
                // Waits until the kernel took every byte, as a blocking client's sendall does (Python's urllib).
                try await client.channel.writeAndFlush(body).value()
                let status = try await client.readResponse().status
                #expect(status == 503)
            }
            try await holder.close()
        }
    }

    @Test("maxConnectionsPerAddress caps one address; closing one lets the next in")
    func perAddressCap() async throws {
        var configuration = testConfiguration()
        configuration.maxConnectionsPerAddress = 2
        try await withServer(self.app, configuration: configuration) { server, port in
            let first = try await self.openIdle(port: port)
            let second = try await self.openIdle(port: port)
            #expect(await eventually { server.statistics.openConnections == 2 })
            try await RawClient.withConnection(port: port) { client in
                let response = try await client.readResponse()
                #expect(response.status == 503)
                #expect(response.body.hasPrefix("too many connections from your address"))
            }
            try await first.close()
            #expect(await eventually { server.statistics.openConnections == 1 })
            #expect(try await self.get(port: port).status == 200)
            try await second.close()
            #expect(await eventually { server.statistics.openConnections == 0 })
            #expect(server.statistics.refusedForAddressLimit == 1)
            #expect(server.statistics.refusedForConnectionLimit == 0)
        }
    }

    @Test("With exemptsLoopbackFromAddressCap, loopback peers are outside the per-address cap; others are held to it")
    func loopbackExempt() throws {
        let limiter = ConnectionLimiter(
            maxConnections: 1000, maxPerAddress: 2, exemptsLoopback: true, counters: ServerCounters(),
            logger: testLogger)
        let client = try SocketAddress(ipAddress: "203.0.113.7", port: 40000)
        #expect(limiter.admit(client) == .admitted && limiter.admit(client) == .admitted)
        #expect(limiter.admit(client) == .refused(.addressFull))
        for address in ["127.0.0.1", "127.0.0.2", "::1"] {
            let local = try SocketAddress(ipAddress: address, port: 40000)
            for _ in 0..<5 { #expect(limiter.admit(local) == .admitted, "\(address)") }
            for _ in 0..<5 { limiter.release(local) }
        }
        limiter.release(client)
        #expect(limiter.admit(client) == .admitted)
    }

    @Test(
        "connectionRatePerAddress: the burst is served, the next connection gets 503, then the bucket refills")
    func perAddressRate() async throws {
        var configuration = testConfiguration()
        configuration.connectionRatePerAddress = 0.5  // a burst of one, then one every 2 s
        try await withServer(self.app, configuration: configuration) { server, port in
            let first = try await self.get(port: port)
            let second = try await self.get(port: port)
            #expect(first.status == 200)
            #expect(second.status == 503)
            #expect(second.body.hasPrefix("too many new connections from your address"))
            #expect(server.statistics.refusedForAddressRate == 1)
            try await Task.sleep(for: .milliseconds(2100))  // a token back
            #expect(try await self.get(port: port).status == 200)
        }
    }
}
