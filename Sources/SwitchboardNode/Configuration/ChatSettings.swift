import SwitchboardAuth
public import SwitchboardRedis

/// Fan-out through Redis (several nodes), or the embedded broker without it.
public struct RedisSettings: Sendable {
    /// The Redis servers to fan out through, with their TLS files: one, or several independent shards (each channel
    /// and room on one of them, by jump consistent hash); none for the embedded broker.
    public var configurations: [RedisConfiguration] = []

    /// Seed nodes of a Redis Cluster (their URLs: credentials and TLS as for `--redis`); empty without a cluster.
    public var clusterSeeds: [RedisConfiguration] = []

    /// The one Redis (or the first shard); setting it sets the only one.
    public var configuration: RedisConfiguration? {
        get { self.configurations.first }
        set { self.configurations = newValue.map { [$0] } ?? [] }
    }
    /// Seconds a room member stays listed without a refresh from its node: the bound on ghosts after a crash.
    public var presenceTTL = 30

    public init() {}

    static let url = Setting(
        "redis", .list(separator: ","), variable: "SWITCHBOARD_REDIS", secret: true,
        defaultNote: "none: the embedded broker, one node",
        help: "Fan out through Redis, so several nodes chat together: redis://[[user]:password@]host[:port][/db], or "
            + "rediss://… for TLS. Repeated (or a comma list): independent shards, each channel and room on one of "
            + "them by jump consistent hash; every node must list the same shards in the same order."
    ) { value in validURL(value) }
    static let cluster = Setting(
        "redis-cluster", .list(separator: ","), variable: "SWITCHBOARD_REDIS_CLUSTER", secret: true,
        defaultNote: "none",
        help:
            "Fan out through a Redis Cluster (Redis 7): seed nodes as redis:// or rediss:// URLs, repeated or a comma "
            + "list; the topology is read from them. Channels are sharded (SPUBLISH, SSUBSCRIBE), each room's keys "
            + "in one slot. Instead of --redis."
    ) { value in validURL(value) }
    /// `nil` for a Redis URL we can connect to, else why not (a `RedisURLError` never contains the password:
    /// FuzzRedisURL checks it).
    private static func validURL(_ value: String) -> String? {
        do {
            _ = try RedisConfiguration(url: value)
            return nil
        } catch {
            return "\(error)"
        }
    }
    static let ca = Setting(
        "redis-ca", .file, defaultNote: "the system's trust roots",
        help: "rediss:// only: a PEM file of the CA certificates to trust for Redis.")
    static let certificate = Setting(
        "redis-cert", .file,
        help: "rediss:// only: a PEM client certificate for Redis servers that require one (tls-auth-clients yes); "
            + "needs --redis-key.")
    static let key = Setting("redis-key", .file, help: "rediss:// only: the PEM private key of --redis-cert.")
    static let presenceTTL = Setting(
        "presence-ttl", .integer(1...3600, unit: " seconds"), default: "30",
        help: "With --redis: seconds a room member stays listed without a refresh from its node, the bound on ghost "
            + "users after a node crash.")

    static let settings = [url, cluster, ca, certificate, key, presenceTTL]

    public init(_ parser: inout SettingsParser) {
        self.presenceTTL = parser.integer(Self.presenceTTL) ?? self.presenceTTL
        let files = [
            (Self.ca, parser.text(Self.ca)), (Self.certificate, parser.text(Self.certificate)),
            (Self.key, parser.text(Self.key)),
        ]
        let seeds = parser.list(Self.cluster).compactMap { try? RedisConfiguration(url: $0) }
        var configurations = parser.list(Self.url).compactMap { try? RedisConfiguration(url: $0) }
        if !seeds.isEmpty {
            if !configurations.isEmpty { parser.report("redis and redis-cluster are two ways to one thing: give one") }
            configurations = []
        }
        guard !configurations.isEmpty || !seeds.isEmpty else {
            for (setting, value) in files where value != nil {
                parser.report("\(setting.key) needs a rediss:// URL in redis (TLS to Redis)")
            }
            return
        }
        if (files[1].1 == nil) != (files[2].1 == nil) { parser.report("redis-cert and redis-key go together") }
        if (configurations + seeds).contains(where: { $0.tls == nil }) {
            for (setting, value) in files where value != nil {
                parser.report("\(setting.key) needs a rediss:// URL in redis (TLS to Redis), for every shard")
            }
        }
        if Set(configurations.map { "\($0.host):\($0.port)/\($0.database)" }).count < configurations.count {
            parser.report("redis lists the same server twice: each shard is a Redis of its own")
        }
        let withFiles = { (configuration: RedisConfiguration) -> RedisConfiguration in
            var configuration = configuration
            configuration.tls?.caFile = files[0].1
            configuration.tls?.certificateFile = files[1].1
            configuration.tls?.keyFile = files[2].1
            return configuration
        }
        self.configurations = configurations.map(withFiles)
        self.clusterSeeds = seeds.map(withFiles)
    }
}

/// The chat's endpoints and rooms: who may open sockets, what is served, how much history is kept.
public struct ChatSettings: Sendable {
    public var allowedOrigins: [String] = []
    public var publicURL: String?
    public var requireOrigin = false
    public var echo = false
    public var maxRooms = 10_000
    public var historySize = 1000
    /// Seconds a room message is kept.
    public var historyTTL = 86_400
    /// MiB of embedded history.
    public var historyMemory = 256
    /// Messages per second a `/ws` or `/chat` socket may send, after a burst of twice as many.
    public var sayRate = 20.0
    /// Messages per second one address may send over all its sockets, after a burst of twice as many.
    public var ipSayRate = 100.0
    /// WebSockets one address may have open.
    public var maxSocketsPerIP = 128
    /// Rooms one client may have created and still hold open.
    public var roomsPerClient = 100

    public init() {}

    static let allowedOrigins = Setting(
        "allowed-origin", .list(separator: ","), variable: "SWITCHBOARD_ALLOWED_ORIGINS",
        defaultNote: "the --public-url's origin",
        help: "A browser origin allowed to open WebSockets, e.g. https://chat.example.com; repeatable."
    ) { value in
        value.hasPrefix("http://") || value.hasPrefix("https://")
            ? nil : "each must look like https://host[:port], not \(value.debugDescription)"
    }
    static let publicURL = Setting(
        "public-url", .text,
        defaultNote: "the --host and --port address (for 127.0.0.1 also localhost and [::1]); none for 0.0.0.0",
        help: "The URL browsers open the chat at, e.g. https://chat.example.com; its origin is the one allowed to "
            + "open WebSockets when no --allowed-origin is given."
    ) { value in
        BrowserOrigins.origin(ofPublicURL: value) == nil
            ? "must look like https://host[:port][/path], not \(value.debugDescription)" : nil
    }
    static let requireOrigin = Setting(
        "require-origin", .toggle, default: "false",
        help: "Refuse WebSocket requests without an Origin header. By default they are let in: they do not come "
            + "from a browser page.")
    static let echo = Setting(
        "echo", .toggle, default: "false",
        help:
            "Serve GET /echo, a WebSocket echo for conformance runs and benchmarks (16 MiB messages; browser origins as "
            + "for every socket).")
    static let maxRooms = Setting(
        "max-rooms", .integer(1...1_000_000, unit: ""), default: "10000",
        help: "The most rooms with members on this node; a join past it gets rooms_full.")
    static let historySize = Setting(
        "history-size", .integer(1...100_000, unit: ""), default: "1000",
        help: "Messages of history kept per room for catch-up.")
    static let historyTTL = Setting(
        "history-ttl", .integer(1...31_536_000, unit: " seconds"), default: "86400",
        help: "Seconds a room message is kept; with --redis a room's stream expires that long after its last message.")
    static let historyMemory = Setting(
        "history-memory", .integer(1...1_048_576, unit: " MiB"), default: "256",
        help: "Without --redis: MiB of room history kept in this process, over all rooms; past it the history of the "
            + "rooms nobody is in goes first, oldest first.")
    static let sayRate = Setting(
        "say-rate", .number(atMost: 1_000_000), default: "20",
        help: "Messages a /ws or /chat socket may send per second, after a burst of twice as many (and 1,600 bytes "
            + "of text per message; frames of any kind 2.5 times as many, at least 50); a user over all their "
            + "sockets twice that. Past it /ws answers rate_limited, /chat drops the message; a socket that goes on "
            + "is closed.")
    static let ipSayRate = Setting(
        "ip-say-rate", .number(atMost: 1_000_000), default: "100",
        help: "Messages one IP address may send per second over all its sockets, after a burst of twice as many "
            + "(behind a --trusted-proxy, per forwarded client), and never less than 5 times --say-rate.")
    static let maxSocketsPerIP = Setting(
        "max-sockets-per-ip", .integer(1...10_000_000, unit: ""), default: "128",
        help: "WebSockets one IP address may have open (behind a --trusted-proxy, per forwarded client; not "
            + "loopback peers with --exempt-loopback); past it the handshake gets 503.")
    static let roomsPerClient = Setting(
        "rooms-per-client", .integer(1...1_000_000, unit: ""), default: "100",
        help: "Rooms one client (a user with a token, else an IP address) may have created and still hold open; "
            + "past it a join of a new room gets room_quota. The last tenth of --max-rooms is kept for clients "
            + "that created few.")

    static let settings = [
        allowedOrigins, publicURL, requireOrigin, echo, maxRooms, historySize, historyTTL, historyMemory, sayRate,
        ipSayRate, maxSocketsPerIP, roomsPerClient,
    ]

    public init(_ parser: inout SettingsParser) {
        self.allowedOrigins = parser.list(Self.allowedOrigins)
        self.publicURL = parser.text(Self.publicURL)
        self.requireOrigin = parser.toggle(Self.requireOrigin)
        self.echo = parser.toggle(Self.echo)
        self.maxRooms = parser.integer(Self.maxRooms) ?? self.maxRooms
        self.historySize = parser.integer(Self.historySize) ?? self.historySize
        self.historyTTL = parser.integer(Self.historyTTL) ?? self.historyTTL
        self.historyMemory = parser.integer(Self.historyMemory) ?? self.historyMemory
        self.sayRate = parser.number(Self.sayRate) ?? self.sayRate
        self.ipSayRate = parser.number(Self.ipSayRate) ?? self.ipSayRate
        self.maxSocketsPerIP = parser.integer(Self.maxSocketsPerIP) ?? self.maxSocketsPerIP
        self.roomsPerClient = parser.integer(Self.roomsPerClient) ?? self.roomsPerClient
    }

    /// The browser origins allowed: the configured list, else the public URL's origin, else the listening
    /// address's.
    public func origins(host: String, port: Int) -> [String] {
        if !self.allowedOrigins.isEmpty { return self.allowedOrigins }
        if let url = self.publicURL, let origin = BrowserOrigins.origin(ofPublicURL: url) { return [origin] }
        return BrowserOrigins.origins(listeningOn: host, port: port)
    }
}

/// Where `GET /metrics` is served.
public struct MetricsSettings: Sendable {
    /// `nil`: no metrics, and none recorded.
    public var port: Int?
    public var host = "127.0.0.1"

    public init() {}

    static let port = Setting(
        "metrics-port", .integer(0...65535, unit: ""), defaultNote: "no metrics, and none recorded",
        help: "Serve Prometheus metrics at http://<metrics-host>:<port>/metrics, a port apart from the public one.")
    static let host = Setting(
        "metrics-host", .text, default: "127.0.0.1", help: "The address the metrics port listens on.")

    static let settings = [port, host]

    public init(_ parser: inout SettingsParser) {
        self.port = parser.integer(Self.port)
        self.host = parser.text(Self.host) ?? self.host
    }
}
