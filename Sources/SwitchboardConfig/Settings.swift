import Logging
import SwitchboardAuth
import SwitchboardChat
import SwitchboardRedis
import SwitchboardServer
import SwitchboardWebhooks

/// Every setting of `switchboard serve`, in the order of `--help`. The single list the config file, the environment
/// and `check-config` go by; a test keeps it equal to the flags.
public enum Settings {
    /// All of them.
    public static let all: [Setting] = server + tls + chat + identity + metrics + webhooks

    /// The setting with this config-file key.
    public static func named(_ key: String) -> Setting? { byKey[key] }

    /// The setting with this environment variable.
    public static func variable(_ name: String) -> Setting? { byVariable[name] }

    private static let byKey = Dictionary(uniqueKeysWithValues: all.map { ($0.key, $0) })
    private static let byVariable = Dictionary(uniqueKeysWithValues: all.map { ($0.variable, $0) })

    static let server: [Setting] = [
        Setting("host", .text),
        Setting("port", .integer(0...65535, unit: "")),
        Setting("log-level", .choice(Logger.Level.allCases.map(\.rawValue))),
        Setting("log-format", .choice(["text", "json"])),
        Setting("shutdown-timeout", .integer(1...3600, unit: " seconds")),
        Setting("max-connections", .integer(connectionCounts, unit: "")),
        Setting("max-connections-per-ip", .integer(connectionCounts, unit: "")),
        Setting("connection-rate-per-ip", .number(atMost: 1_000_000)),
        Setting("trusted-proxy", .list(separator: ","), variable: "SWITCHBOARD_TRUSTED_PROXIES") { value in
            IPAddressRange(value) == nil
                ? "each must be an IP address or a CIDR range (10.0.0.0/8), not \(value.debugDescription)" : nil
        },
    ]

    static let tls: [Setting] = [
        Setting("tls-cert", .file),
        Setting("tls-key", .file),
    ]

    static let chat: [Setting] = [
        Setting("redis", .text, secret: true) { value in
            do {
                _ = try RedisConfiguration(url: value)
                return nil
            } catch {
                // RedisURLError never contains the password (FuzzRedisURL checks it).
                return "\(error)"
            }
        },
        Setting("redis-ca", .file),
        Setting("redis-cert", .file),
        Setting("redis-key", .file),
        Setting("allowed-origin", .list(separator: ","), variable: "SWITCHBOARD_ALLOWED_ORIGINS") { value in
            value.hasPrefix("http://") || value.hasPrefix("https://")
                ? nil : "each must look like https://host[:port], not \(value.debugDescription)"
        },
        Setting("public-url", .text) { value in
            ChatOrigins.origin(ofPublicURL: value) == nil
                ? "must look like https://host[:port][/path], not \(value.debugDescription)" : nil
        },
        Setting("require-origin", .toggle),
        Setting("echo", .toggle),
        Setting("publish-token", .text, secret: true) { value in
            value.count < 16 ? "must have at least 16 characters" : nil
        },
        Setting("publish-key", .list(separator: ";"), variable: "SWITCHBOARD_PUBLISH_KEYS", secret: true) { value in
            switch PublishKey.parse(value) {
            case .success: return nil
            case .failure(let error): return "\(error)"
            }
        },
        Setting("api-key", .list(separator: ";"), variable: "SWITCHBOARD_API_KEYS", secret: true) { value in
            switch ApiKey.parse(value) {
            case .success: return nil
            case .failure(let error): return "\(error)"
            }
        },
        Setting("api-deadline", .integer(1...60_000, unit: " ms")),
        Setting("api-rate", .integer(1...10_000_000, unit: " requests/s")),
        Setting("presence-ttl", .integer(1...3600, unit: " seconds")),
        Setting("max-rooms", .integer(1...1_000_000, unit: "")),
        Setting("history-size", .integer(1...100_000, unit: "")),
        Setting("history-ttl", .integer(1...31_536_000, unit: " seconds")),
        Setting("history-memory", .integer(1...1_048_576, unit: " MiB")),
    ]

    static let identity: [Setting] = [
        Setting("jwt-secret", .text, secret: true) { value in
            value.utf8.count < 32 ? "must have 32 bytes or more (48 for HS384, 64 for HS512)" : nil
        },
        Setting("jwt-algorithm", .choice(["HS256", "HS384", "HS512"])),
        Setting("jwt-public-key", .file),
        Setting("jwks-file", .file),
        Setting("jwks-url", .text) { value in
            value.hasPrefix("http://") || value.hasPrefix("https://")
                ? nil : "must be an http:// or https:// URL, not \(value.debugDescription)"
        },
        Setting("jwks-refresh", .integer(1...86_400, unit: " seconds")),
        Setting("jwt-audience", .text),
        Setting("jwt-issuer", .text),
        Setting("allow-anonymous", .toggle),
        Setting("private-room", .list(separator: ","), variable: "SWITCHBOARD_PRIVATE_ROOMS") { value in
            ChannelPattern(value) == nil ? "each must be 1 to 128 bytes, not \(value.debugDescription)" : nil
        },
        Setting("say-rate", .number(atMost: 1_000_000)),
    ]

    static let metrics: [Setting] = [
        Setting("metrics-port", .integer(0...65535, unit: "")),
        Setting("metrics-host", .text),
    ]

    static let webhooks: [Setting] = [
        Setting("webhook-url", .list(separator: ","), variable: "SWITCHBOARD_WEBHOOK_URLS") { value in
            WebhookURL(value) == nil
                ? "each must be an http:// or https:// URL without user or fragment, not \(value.debugDescription)"
                : nil
        },
        Setting("webhook-secret", .text, secret: true) { value in
            value.utf8.count < 16 ? "must have at least 16 characters" : nil
        },
        Setting("webhook-events", .list(separator: ",")) { value in
            WebhookEvent.Name(rawValue: value) == nil
                ? "each must be one of \(WebhookEvent.Name.allCases.map(\.rawValue).joined(separator: ", ")), not "
                    + value.debugDescription : nil
        },
        Setting("webhook-delay", .integer(0...60_000, unit: " ms")),
        Setting("hook-connect", .text) { value in Self.hookURLProblem(value) },
        Setting("hook-join", .text) { value in Self.hookURLProblem(value) },
        Setting("hook-say", .text) { value in Self.hookURLProblem(value) },
        Setting("hook-timeout", .integer(1...60_000, unit: " ms")),
        Setting("hook-failure", .choice(["closed", "open"])),
    ]

    private static func hookURLProblem(_ value: String) -> String? {
        WebhookURL(value) == nil
            ? "must be an http:// or https:// URL without user or fragment, not \(value.debugDescription)" : nil
    }

    /// What a connection cap may be.
    public static let connectionCounts = 1...10_000_000
}
