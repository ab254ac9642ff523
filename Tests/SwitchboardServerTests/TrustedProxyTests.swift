import NIOCore
import Switchboard
import SwitchboardServer
import SwitchboardTesting
import Testing

@Suite("Trusted proxies: X-Forwarded-For and X-Forwarded-Proto", .timeLimit(.minutes(1)))
struct TrustedProxyTests {
    @Test("Addresses and CIDR ranges, IPv4 and IPv6; an IPv4 address written as IPv6 is the IPv4 one")
    func ranges() throws {
        let private10 = try #require(IPAddressRange("10.0.0.0/8"))
        #expect(private10.contains(address: "10.200.3.4") && !private10.contains(address: "11.0.0.1"))
        let loopback = try #require(IPAddressRange("127.0.0.1"))
        #expect(loopback.contains(address: "127.0.0.1") && loopback.contains(address: "::ffff:127.0.0.1"))
        #expect(!loopback.contains(address: "127.0.0.2"))
        let v6 = try #require(IPAddressRange("fd00::/8"))
        #expect(
            v6.contains(address: "fd12::1") && !v6.contains(address: "fe80::1") && !v6.contains(address: "10.0.0.1"))
        #expect(IPAddressRange("0.0.0.0/0")?.contains(address: "8.8.8.8") == true)
        for bad in ["", "abc", "10.0.0.0/33", "::1/129", "1.2.3.4/x", "1.2.3.4/", "10.0.0.0/8/8"] {
            #expect(IPAddressRange(bad) == nil, "\(bad)")
        }
        #expect(IPAddressRange("10.0.0.0/8")?.description == "10.0.0.0/8")
    }

    /// An app that answers with what it was told about the client.
    private let whoAmI = AnyApplication { request in
        Response(body: .init(string: "\(request.remoteAddress?.ipAddress ?? "?") \(request.scheme)"))
    }

    private func ask(port: Int, headers: [String]) async throws -> TestResponse {
        try await RawClient.withConnection(port: port) { client in
            try await client.send(
                "GET / HTTP/1.1\r\nHost: t\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n")
            return try await client.readResponse()
        }
    }

    @Test("From a trusted proxy the client is the rightmost untrusted hop and the scheme is forwarded")
    func trusted() async throws {
        var configuration = testConfiguration()
        configuration.trustedProxies = [IPAddressRange("127.0.0.1")!, IPAddressRange("10.0.0.0/8")!]
        try await withServer(self.whoAmI, configuration: configuration) { _, port in
            // A client-written entry (1.1.1.1) left of the real client is not believed.
            let forwarded = try await self.ask(
                port: port, headers: ["X-Forwarded-For: 1.1.1.1, 203.0.113.7, 10.0.0.2", "X-Forwarded-Proto: https"])
            #expect(forwarded.body == "203.0.113.7 https")
            let split = try await self.ask(
                port: port, headers: ["X-Forwarded-For: 198.51.100.1", "X-Forwarded-For: 10.1.1.1"])
            #expect(split.body == "198.51.100.1 http", "several fields are one list")
            let garbage = try await self.ask(
                port: port, headers: ["X-Forwarded-For: not-an-ip", "X-Forwarded-Proto: gopher"])
            #expect(garbage.body == "127.0.0.1 http", "nothing usable: the peer, and the connection's scheme")
            #expect(try await self.ask(port: port, headers: []).body == "127.0.0.1 http")
        }
    }

    @Test("From any other peer the headers are ignored")
    func untrusted() async throws {
        var configuration = testConfiguration()
        configuration.trustedProxies = [IPAddressRange("10.0.0.0/8")!]
        try await withServer(self.whoAmI, configuration: configuration) { _, port in
            let spoofed = try await self.ask(
                port: port, headers: ["X-Forwarded-For: 203.0.113.7", "X-Forwarded-Proto: https"])
            #expect(spoofed.body == "127.0.0.1 http")
        }
        try await withServer(self.whoAmI) { _, port in
            let plain = try await self.ask(port: port, headers: ["X-Forwarded-For: 203.0.113.7"])
            #expect(plain.body == "127.0.0.1 http")
        }
    }

    @Test("Behind a trusted proxy the per-address rate applies to each client, not to the proxy")
    func ratePerClient() async throws {
        var configuration = testConfiguration()
        configuration.trustedProxies = [IPAddressRange("127.0.0.1")!]
        configuration.connectionRatePerAddress = 1  // a burst of 2, then 1 per second
        try await withServer(self.whoAmI, configuration: configuration) { server, port in
            // Past the burst one is refused (a slow machine may refill a token between two requests: ask on).
            var refused: TestResponse?
            for _ in 0..<20 where refused == nil {
                let answer = try await self.ask(port: port, headers: ["X-Forwarded-For: 203.0.113.7"])
                if answer.status != 200 { refused = answer }
            }
            #expect(refused?.status == 503 && refused?.body.contains("too many new connections") == true)
            // Another client through the same proxy, on new connections from the same peer address: served.
            #expect(try await self.ask(port: port, headers: ["X-Forwarded-For: 198.51.100.9"]).status == 200)
            #expect(server.statistics.refusedForAddressRate == 1)
        }
    }
}
