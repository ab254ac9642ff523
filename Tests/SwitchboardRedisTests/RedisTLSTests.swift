import NIOCore
import NIOPosix
import SwitchboardLocks
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardTesting
import Testing

@Suite("rediss:// against a redis-server serving TLS", requiresRedis, .timeLimit(.minutes(1)))
struct RedisTLSTests {
    /// The test server's configuration from a `rediss://` URL, trusting the test CA.
    private func configuration(
        _ redis: RedisServerProcess, _ certificates: TestCertificates, clientCertificate: Bool
    ) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(url: "rediss://127.0.0.1:\(redis.port)")
        configuration.connectTimeout = .seconds(2)
        configuration.tls?.caFile = certificates.caPath
        if clientCertificate {
            configuration.tls?.certificateFile = certificates.directory + "/client.pem"
            configuration.tls?.keyFile = certificates.directory + "/client.key"
        }
        return configuration
    }

    @Test("Commands and pub/sub over TLS, with a client certificate the server requires")
    func brokerOverTLS() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        try certificates.makeServer(named: "client")
        let redis = try await RedisServerProcess(
            tls: .init(certificates: certificates, requiresClientCertificates: true))
        defer { redis.stop() }
        let configuration = try self.configuration(redis, certificates, clientCertificate: true)
        let connection = try await RedisConnection.connect(
            to: configuration, on: MultiThreadedEventLoopGroup.singleton.next(), logger: redisTestLogger)
        #expect(try await connection.send(RESPCommand("SET", "k", "over tls")) == .simpleString("OK"))
        #expect(try await connection.send(RESPCommand("GET", "k")).string == "over tls")
        // The server has no plain port (0): everything above went over TLS.
        #expect(try await connection.send(RESPCommand("CONFIG", "GET", "port")).elements?.last?.string == "0")

        let broker = RedisBroker(
            configuration: configuration, eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: redisTestLogger)
        broker.start()
        #expect(await broker.waitUntilConnected(timeout: .seconds(5)))
        let received = Locked<[String]>([])
        let subscription = try await broker.subscribe(
            to: "secure", on: MultiThreadedEventLoopGroup.singleton.next()
        ) { event in
            if case .message(let message) = event { received.withLock { $0.append(String(buffer: message.payload)) } }
        }
        try await broker.publish(ByteBuffer(string: "encrypted hello"), to: "secure")
        #expect(await eventually { received.withLock { $0 } == ["encrypted hello"] })
        subscription.cancel()
        await broker.shutdown()
        await connection.close()
    }

    @Test("Refused with a clear error: no client certificate when required, an untrusted server, plain redis://")
    func refusals() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let redis = try await RedisServerProcess(
            tls: .init(certificates: certificates, requiresClientCertificates: true))
        defer { redis.stop() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        // The server requires a client certificate; without one the handshake (or the first reply) fails.
        let withoutCertificate = try self.configuration(redis, certificates, clientCertificate: false)
        let error = await #expect(throws: RedisError.self) {
            _ = try await RedisConnection.connect(to: withoutCertificate, on: loop, logger: redisTestLogger)
        }
        #expect("\(error.map { "\($0)" } ?? "")".contains("CERTIFICATE_REQUIRED"), "the error says why")
        // A CA that did not sign the server's certificate.
        let other = try TestCertificates()
        defer { other.remove() }
        try certificates.makeServer(named: "client")
        var untrusted = try self.configuration(redis, certificates, clientCertificate: true)
        untrusted.tls?.caFile = other.caPath
        let error2 = await #expect(throws: RedisError.self) {
            _ = try await RedisConnection.connect(to: untrusted, on: loop, logger: redisTestLogger)
        }
        #expect("\(error2.map { "\($0)" } ?? "")".contains("CERTIFICATE_VERIFY_FAILED"), "the error says why")
        // Plain RESP to a TLS port is not answered as Redis.
        var plain = try self.configuration(redis, certificates, clientCertificate: false)
        plain.tls = nil
        await #expect(throws: RedisError.self) {
            let connection = try await RedisConnection.connect(to: plain, on: loop, logger: redisTestLogger)
            _ = try await connection.send(RESPCommand("PING"))
        }
    }
}
