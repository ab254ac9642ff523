import Foundation
import Logging
import NIOCore
import SwitchboardApi
import SwitchboardAuth
import SwitchboardHTTPClient
import SwitchboardNode
import SwitchboardRedis
import SwitchboardServer
import SwitchboardTesting
import SwitchboardWebhooks
import Testing

/// The node's typed configuration, read from every layer: each setting reaches its part.
@Suite("NodeConfiguration: every setting from flags, environment and file")
struct NodeConfigurationTests {
    @Test("a file that sets everything reaches every setting; the environment and flags override it")
    func everySettingFromTheFile() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let directory = try TemporaryDirectory()
        let file = directory.path + "/switchboard.yaml"
        try """
        host: 127.0.0.9
        port: 8089
        log-level: debug
        log-format: json
        shutdown-timeout: 7
        max-connections: 900
        max-connections-per-ip: 90
        exempt-loopback: true
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
        ip-say-rate: 33
        max-sockets-per-ip: 44
        rooms-per-client: 55
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
        // The file names every setting of the catalog: a new setting must be added here and checked below (but
        // redis-cluster, which goes instead of redis: `clusterSeeds` has a test of its own).
        let keys = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n").map {
            String($0.prefix { $0 != ":" })
        }
        #expect(Set(keys) == Set(NodeConfiguration.settings.map(\.key)).subtracting(["redis-cluster"]))
        let reader = try await SettingsReader(
            flags: ["port": ["9001"], "history-size": ["111"]],
            environment: ["SWITCHBOARD_MAX_ROOMS": "77", "SWITCHBOARD_HOST": "127.0.0.8"], configFile: file)
        let configuration = try NodeConfiguration(reader: reader)
        let (server, chat, api, identity) = (
            configuration.server, configuration.chat, configuration.api, configuration.identity
        )
        // The flag wins over the file, the environment over the file.
        #expect(server.port == 9001)
        #expect(chat.historySize == 111)
        #expect(server.host == "127.0.0.8")
        #expect(chat.maxRooms == 77)
        // Everything else comes from the file.
        #expect(configuration.log.level == .debug)
        #expect(configuration.log.format == .json)
        #expect(server.shutdownTimeout == 7)
        #expect(server.maxConnections == 900)
        #expect(server.maxConnectionsPerIP == 90 && server.exemptLoopback)
        #expect(server.connectionRatePerIP == 9.5)
        #expect(server.trustedProxies.map(\.description) == ["10.0.0.0/8", "::1"])
        #expect(server.tlsCertificate == certificates.certificatePath && server.tlsKey == certificates.keyPath)
        let redis = try #require(configuration.redis.configuration)
        #expect(redis.host == "redis.internal" && redis.port == 6390 && redis.database == 2)
        #expect(redis.tls?.caFile == certificates.caPath && redis.tls?.certificateFile == certificates.certificatePath)
        #expect(redis.tls?.keyFile == certificates.keyPath)
        #expect(configuration.redis.presenceTTL == 45)
        #expect(chat.allowedOrigins == ["https://a.example", "https://b.example"])
        #expect(chat.publicURL == "https://chat.example/app")
        #expect(chat.requireOrigin && chat.echo)
        #expect(chat.historyTTL == 3600 && chat.historyMemory == 64)
        #expect(chat.sayRate == 3 && chat.ipSayRate == 33 && chat.maxSocketsPerIP == 44 && chat.roomsPerClient == 55)
        #expect(api.publishToken == "file-token-0123456789")
        #expect(api.publishKeys.map(\.name) == ["orders", "alerts"])
        #expect(api.apiKeys.map(\.name) == ["backend", "support"])
        #expect(api.apiKeys.last?.operations == [.presence, .history])
        #expect(api.deadline == 250)
        let apiConfiguration = api.configuration
        #expect(apiConfiguration.apiKeys.allSatisfy { $0.rate.rate == 500 && $0.rate.burst == 1000 })
        #expect(apiConfiguration.publishKeys.allSatisfy { $0.rate.rate == 500 })
        #expect(identity.jwtSecret == "file-secret-0123456789abcdef0123456789")
        #expect(identity.jwtAlgorithm == "HS256")
        #expect(identity.jwtPublicKey == "/etc/none.pem")
        #expect(identity.jwksFile == "/etc/none.json")
        #expect(identity.jwksURL == "https://id.example/jwks.json")
        #expect(identity.jwksRefresh == 120)
        #expect(identity.jwtAudience == "chat" && identity.jwtIssuer == "https://id.example")
        #expect(identity.allowAnonymous)
        #expect(identity.privateRooms.map(\.pattern) == ["team-*", "staff"])
        #expect(configuration.metrics.port == 9091 && configuration.metrics.host == "127.0.0.2")
        let webhooks = configuration.webhooks
        let hooks = try #require(webhooks.configuration)
        #expect(hooks.urls.map(\.description) == ["https://hooks.example/a", "http://127.0.0.1:9/b"])
        #expect(hooks.secret == "file-webhook-secret-0123" && hooks.leaveDelay == .milliseconds(1500))
        #expect(hooks.events == [.memberJoined, .memberLeft])
        let backend = webhooks.hooks
        #expect(backend.connect?.description == "https://app.example/connect")
        #expect(backend.join?.description == "https://app.example/join" && backend.say?.port == 9)
        #expect(backend.timeout == .milliseconds(750) && backend.failOpen)
        #expect(backend.secret == "file-webhook-secret-0123")
    }

    @Test("redis-cluster: seed URLs (TLS files for each), instead of redis; both given is one problem")
    func clusterSeeds() async throws {
        let reader = try await SettingsReader(
            flags: ["redis-cluster": ["redis://10.0.0.1:7000", "redis://:secret@10.0.0.2:7001"]], environment: [:])
        let configuration = try NodeConfiguration(reader: reader)
        #expect(configuration.redis.clusterSeeds.map { "\($0.host):\($0.port)" } == ["10.0.0.1:7000", "10.0.0.2:7001"])
        #expect(configuration.redis.clusterSeeds.last?.password == "secret")
        #expect(configuration.redis.configurations.isEmpty)
        let both = try await SettingsReader(
            flags: ["redis-cluster": ["redis://10.0.0.1:7000"], "redis": ["redis://10.0.0.3:6379"]], environment: [:])
        #expect(throws: (any Error).self) { try NodeConfiguration(reader: both) }
    }

    @Test("docs/CONFIGURATION.md lists every setting with its variable and its help, as --help does")
    func documented() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/CONFIGURATION.md").path
        let rows = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").filter {
            $0.hasPrefix("| `--")
        }
        for setting in NodeConfiguration.settings + [NodeConfiguration.configFile] {
            let row = rows.first { $0.hasPrefix("| `\(setting.flag) ") || $0.hasPrefix("| `\(setting.flag)`") }
            #expect(row?.contains("`\(setting.variable)`") == true, "\(setting.flag) is not in the table")
            #expect(row?.contains(setting.help) == true, "\(setting.flag)'s help differs from its definition")
        }
        #expect(rows.count == NodeConfiguration.settings.count + 1, "a row for a setting that no longer exists")
    }

    @Test("every bound of every setting: accepted at it, refused one past it, the problem naming the flag")
    func boundsFromTheFlags() async throws {
        for setting in NodeConfiguration.settings {
            let cases: [(String, Bool)]
            switch setting.kind {
            case .integer(let range, _):
                cases = [
                    ("\(range.upperBound)", true), ("\(range.lowerBound)", true), ("\(range.upperBound + 1)", false),
                    ("\(range.lowerBound - 1)", false),
                ]
            case .number(let bound):
                cases = [("\(bound)", true), ("0", false), ("\(bound * 2)", false)]
            case .choice(let words):
                cases = [(words[0].lowercased(), true), ("nonsense", false)]
            default:
                continue
            }
            for (value, good) in cases {
                let reader = try await SettingsReader(flags: [setting.key: [value]], environment: [:])
                do {
                    _ = try NodeConfiguration(reader: reader)
                    #expect(good, "\(setting.flag) \(value) was accepted")
                } catch {
                    #expect(!good, "\(setting.flag) \(value): \(error)")
                    #expect(error.problems.allSatisfy { $0.hasPrefix(setting.flag) }, "\(error)")
                }
            }
        }
    }

    @Test("settings that go together, from any layer: each problem once, naming what is missing")
    func together() async throws {
        let reader = try await SettingsReader(
            flags: ["tls-cert": ["/x.pem"], "redis-ca": ["/ca.pem"]],
            environment: [
                "SWITCHBOARD_WEBHOOK_URLS": "https://h.example/", "SWITCHBOARD_JWT_ALGORITHM": "HS512",
                "SWITCHBOARD_JWT_SECRET": String(repeating: "s", count: 40),
            ])
        #expect(throws: ConfigurationError.self) { try NodeConfiguration(reader: reader) }
        do {
            _ = try NodeConfiguration(reader: reader)
        } catch {
            #expect(
                error.problems == [
                    "tls-cert needs tls-key (the certificate's private key)",
                    "redis-ca needs a rediss:// URL in redis (TLS to Redis)",
                    "jwt-secret must have 64 bytes or more for HS512",
                    "webhook-url needs webhook-secret (the key that signs each webhook)",
                ])
        }
    }
}
