import ArgumentParser
import Foundation
import Logging
import NIOCore
import SwitchboardAuth
import SwitchboardChat
import SwitchboardConfig
import SwitchboardLocks
import SwitchboardRedis
import SwitchboardServer
import SwitchboardTesting
import SwitchboardWebhooks
import Synchronization
import Testing

@testable import switchboard

/// Flags over the environment over the config file, as `switchboard serve` resolves each setting.
@Suite("Config file < environment < flags", .serialized)
struct ConfigLayeringTests {
    @Test("a file that sets everything reaches every setting; the environment and flags override it")
    func everySettingFromTheFile() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let directory = NSTemporaryDirectory() + "switchboard-layers-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/switchboard.yaml"
        try """
        host: 127.0.0.9
        port: 8089
        log-level: debug
        log-format: json
        shutdown-timeout: 7
        max-connections: 900
        max-connections-per-ip: 90
        connection-rate-per-ip: 9.5
        trusted-proxy: [10.0.0.0/8, "::1"]
        tls-cert: \(certificates.certificatePath)
        tls-key: \(certificates.keyPath)
        redis: rediss://redis.internal:6390/2
        redis-ca: \(certificates.caPath)
        redis-cert: \(certificates.certificatePath)
        redis-key: \(certificates.keyPath)
        allowed-origin: [https://a.example, https://b.example]
        public-url: https://chat.example/app
        require-origin: true
        echo: yes
        publish-token: file-token-0123456789
        publish-key: ["orders:0123456789abcdef:orders.*", "alerts:fedcba9876543210:alerts"]
        api-key: ["backend:0123456789abcdef:*:*", "support:fedcba9876543210:presence,history:room:*"]
        api-deadline: 250
        api-rate: 500
        presence-ttl: 45
        max-rooms: 321
        history-size: 222
        history-ttl: 3600
        history-memory: 64
        jwt-secret: file-secret-0123456789abcdef0123456789
        jwt-algorithm: HS256
        jwt-public-key: /etc/none.pem
        jwks-file: /etc/none.json
        jwks-url: https://id.example/jwks.json
        jwks-refresh: 120
        jwt-audience: chat
        jwt-issuer: https://id.example
        allow-anonymous: true
        private-room: [team-*, staff]
        say-rate: 3
        metrics-port: 9091
        metrics-host: 127.0.0.2
        webhook-url: ["https://hooks.example/a", "http://127.0.0.1:9/b"]
        webhook-secret: file-webhook-secret-0123
        webhook-events: [member_joined, member_left]
        webhook-delay: 1500
        hook-connect: https://app.example/connect
        hook-join: https://app.example/join
        hook-say: http://127.0.0.1:9/say
        hook-timeout: 750
        hook-failure: open
        """.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(ConfigFile.problems(atPath: file, checkingFiles: false).isEmpty)
        // The file names every setting of the catalog: a new setting must be added here and checked below.
        let keys = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map {
            String($0.prefix { $0 != ":" })
        }
        #expect(Set(keys) == Set(Settings.all.map(\.key)))
        let layers = try await LayeredSettings(
            environment: ["SWITCHBOARD_MAX_ROOMS": "77", "SWITCHBOARD_HOST": "127.0.0.8"], configFile: file)
        // The layers are the process's: other suites parsing flags meanwhile see these (valid) values too.
        let before = settingsLayers.withLock { $0 }
        settingsLayers.withLock { $0 = layers }
        defer { settingsLayers.withLock { $0 = before } }

        let serve = try Serve.parse(["--port", "9001", "--history-size", "111"])
        let (options, chat, auth, metrics) = (serve.options, serve.chat, serve.auth, serve.metrics)
        // The flag wins over the file, the environment over the file.
        #expect(options.resolvedPort == 9001)
        #expect(chat.resolvedHistory.messagesPerRoom == 111)
        #expect(options.resolvedHost == "127.0.0.8")
        #expect(chat.resolvedMaxRooms == 77)
        // Everything else comes from the file.
        #expect(options.resolvedLogLevel == .debug)
        #expect(options.resolvedLogFormat == "json")
        #expect(options.resolvedShutdownTimeout == 7)
        #expect(options.resolvedMaxConnections == 900)
        #expect(options.resolvedMaxConnectionsPerIP == 90)
        #expect(options.resolvedConnectionRatePerIP == 9.5)
        #expect(options.resolvedTrustedProxies.map(\.description) == ["10.0.0.0/8", "::1"])
        let tls = try #require(options.tls.credentials())
        #expect(tls.certificateChainPath == certificates.certificatePath && tls.privateKeyPath == certificates.keyPath)
        let redis = try #require(chat.redisConfiguration)
        #expect(redis.host == "redis.internal" && redis.port == 6390 && redis.database == 2)
        #expect(redis.tls?.caFile == certificates.caPath && redis.tls?.certificateFile == certificates.certificatePath)
        #expect(redis.tls?.keyFile == certificates.keyPath)
        #expect(chat.resolvedAllowedOrigins == ["https://a.example", "https://b.example"])
        #expect(chat.resolvedPublicURL == "https://chat.example/app")
        #expect(chat.resolvedRequireOrigin && chat.resolvedEcho)
        #expect(chat.resolvedPublishToken == "file-token-0123456789")
        #expect(chat.resolvedPublishKeys.map(\.name) == ["orders", "alerts"])
        #expect(chat.resolvedPresenceTTL == 45)
        #expect(chat.resolvedApiKeys.map(\.name) == ["backend", "support"])
        #expect(chat.resolvedApiKeys.last?.operations == [.presence, .history])
        #expect(ChatOptions.apiDeadlineSetting.resolve(chat.apiDeadline) == 250)
        #expect(chat.resolvedApiKeys.allSatisfy { $0.rate.rate == 500 && $0.rate.burst == 1000 })
        #expect(chat.resolvedPublishKeys.allSatisfy { $0.rate.rate == 500 })
        #expect(chat.resolvedHistory.maxAgeMilliseconds == 3_600_000)
        #expect(chat.resolvedHistory.maxBytes == 64 << 20)
        #expect(auth.resolvedJWKSFile == "/etc/none.json")
        #expect(auth.resolvedJWKSURL == "https://id.example/jwks.json")
        #expect(auth.resolvedJWKSRefresh == .seconds(120))
        #expect(auth.rateLimits.sayMessages.rate == 3)
        #expect(configured("SWITCHBOARD_JWT_SECRET") == "file-secret-0123456789abcdef0123456789")
        #expect(configured("SWITCHBOARD_JWT_ALGORITHM") == "HS256")
        #expect(configured("SWITCHBOARD_JWT_PUBLIC_KEY") == "/etc/none.pem")
        #expect(configured("SWITCHBOARD_JWT_AUDIENCE") == "chat")
        #expect(configured("SWITCHBOARD_JWT_ISSUER") == "https://id.example")
        #expect(configured("SWITCHBOARD_ALLOW_ANONYMOUS") == "1")
        #expect(configured("SWITCHBOARD_PRIVATE_ROOMS") == "team-*,staff")
        #expect(metrics.resolvedPort == 9091 && metrics.resolvedHost == "127.0.0.2")
        let hooks = try #require(serve.webhooks.configuration())
        #expect(hooks.urls.map(\.description) == ["https://hooks.example/a", "http://127.0.0.1:9/b"])
        #expect(hooks.secret == "file-webhook-secret-0123" && hooks.leaveDelay == .milliseconds(1500))
        #expect(hooks.events == [.memberJoined, .memberLeft])
        let backend = serve.webhooks.hookConfiguration()
        #expect(backend.connect?.description == "https://app.example/connect")
        #expect(backend.join?.description == "https://app.example/join" && backend.say?.port == 9)
        #expect(backend.timeout == .milliseconds(750) && backend.failOpen)
        #expect(backend.secret == "file-webhook-secret-0123")
    }

    @Test("the binary serves what the file says (port 0, echo on), and a flag overrides it")
    func theServerReadsTheFile() async throws {
        let directory = NSTemporaryDirectory() + "switchboard-served-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/switchboard.yaml"
        try "port: 0\necho: true\nlog-format: json\n".write(toFile: file, atomically: true, encoding: .utf8)
        // The file alone: echo on, JSON logs. Then the environment turns echo off and a flag picks text logs.
        let cases: [([String], [String: String], Bool)] = [
            (["--config", file], [:], true),
            (["--config", file, "--log-format", "text"], ["SWITCHBOARD_ECHO": "0"], false),
        ]
        for (arguments, environment, echoes) in cases {
            let server = try LaunchedServer(arguments: arguments, environment: environment)
            defer { server.stop() }
            let port = try await server.port()
            // /echo exists only when echo is on: a plain GET gets 400 (not an upgrade) rather than 404.
            let status = try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                return try await client.readResponse().status
            }
            #expect(status == (echoes ? 400 : 404))
            #expect(server.output().contains("{\"") == echoes, "\(server.output())")
        }
    }
}
