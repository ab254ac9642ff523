import ArgumentParser
import Logging
import NIOCore
import ServiceLifecycle
import Switchboard
import SwitchboardAuth
import SwitchboardChat
import SwitchboardChatRedis
import SwitchboardConfig
import SwitchboardDemos
import SwitchboardMetrics
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardServer
import SwitchboardTopics
import SwitchboardWebhooks

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `switchboard`: the Switchboard server and its demos.
///
/// Serving is the default subcommand: `switchboard`, `switchboard --port 9000` and `switchboard serve --port 9000`
/// do the same. The root command takes no options of its own, so each subcommand gets every option it names
/// (`switchboard bench broker --redis …` reaches the benchmark, not the server's `--redis`).
@main
struct SwitchboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "Real-time messaging for Swift servers.",
        discussion: "Without a subcommand, serves: `switchboard serve --help` lists the server's flags.",
        subcommands: [
            Serve.self, CheckConfigCommand.self, HijackDemoCommand.self, BenchCommand.self, TokenCommand.self,
        ],
        defaultSubcommand: Serve.self
    )
}

/// Options every server subcommand takes. Each flag can also come from an environment variable; the flag wins.
struct ServerOptions: ParsableArguments {
    @Option(
        help: """
            A YAML file of settings, one `key: value` per line, keys as these flags without their dashes \
            (deploy/switchboard.yaml shows them all); the environment and flags override it (env SWITCHBOARD_CONFIG). \
            `switchboard check-config FILE` checks one.
            """
    )
    var config: String?

    @OptionGroup(title: "TLS") var tls: TLSOptions

    @Option(help: "The address to listen on (env SWITCHBOARD_HOST; default 127.0.0.1).")
    var host: String?

    @Option(help: "The TCP port to listen on, 0 for any free one (env SWITCHBOARD_PORT; default 8080).")
    var port: Int?

    @Option(
        help: """
            The log level: trace, debug, info, notice, warning, error or critical \
            (env SWITCHBOARD_LOG_LEVEL; default info).
            """
    )
    var logLevel: String?

    @Option(
        help: """
            text (one line each, for people) or json (one object per line: time, level, label, message, source, \
            metadata; for log collectors) (env SWITCHBOARD_LOG_FORMAT; default text).
            """
    )
    var logFormat: String?

    /// The log format, from the flag, the environment or the default (validated by ``validate()``).
    var resolvedLogFormat: String { (self.logFormat ?? configured("SWITCHBOARD_LOG_FORMAT") ?? "text").lowercased() }

    @Option(
        help: """
            Seconds a graceful shutdown (SIGTERM, SIGINT) may take before open connections are cut, whatever \
            clients do (env SWITCHBOARD_SHUTDOWN_TIMEOUT; default 10).
            """
    )
    var shutdownTimeout: Int?

    @Option(
        help: """
            The most connections open at once; past it new ones get 503 with Retry-After (env \
            SWITCHBOARD_MAX_CONNECTIONS; default: the open-file limit less 64).
            """
    )
    var maxConnections: Int?

    @Option(
        name: .customLong("max-connections-per-ip"),
        help: """
            The most connections open at once from one IP address; past it new ones get 503 (env \
            SWITCHBOARD_MAX_CONNECTIONS_PER_IP; default: no limit, since behind a proxy every client shares its \
            address).
            """
    )
    var maxConnectionsPerIP: Int?

    @Option(
        name: .customLong("connection-rate-per-ip"),
        help: """
            New connections (WebSocket handshakes included) per second from one IP address, after a burst of twice \
            as many; past it 503 (env SWITCHBOARD_CONNECTION_RATE_PER_IP; default: no limit, as for \
            --max-connections-per-ip).
            """
    )
    var connectionRatePerIP: Double?

    @Option(
        name: .customLong("trusted-proxy"),
        help: """
            An address or CIDR range (10.0.0.0/8, ::1) of a proxy in front of the server; repeatable (env \
            SWITCHBOARD_TRUSTED_PROXIES, comma-separated). Its X-Forwarded-For and X-Forwarded-Proto are believed: \
            logs and --connection-rate-per-ip see the client. Default: none, the headers are ignored.
            """
    )
    var trustedProxies: [String] = []

    /// The trusted proxies from the flags or the environment (validated).
    var resolvedTrustedProxies: [IPAddressRange] {
        let texts =
            self.trustedProxies.isEmpty
            ? (configured("SWITCHBOARD_TRUSTED_PROXIES") ?? "").split(separator: ",").map {
                String($0.filter { $0 != " " })
            }.filter { !$0.isEmpty }
            : self.trustedProxies
        return texts.map { text in
            guard let range = IPAddressRange(text) else {
                exitWithUsageError(
                    "a trusted proxy must be an IP address or a CIDR range, not \(text.debugDescription)")
            }
            return range
        }
    }

    /// The per-address connection rate from the flag or the environment; `nil` for none (validated).
    var resolvedConnectionRatePerIP: Double? {
        let text = configured("SWITCHBOARD_CONNECTION_RATE_PER_IP")
        guard let rate = self.connectionRatePerIP ?? text.flatMap(Double.init) else {
            if let text {
                exitWithUsageError("SWITCHBOARD_CONNECTION_RATE_PER_IP must be a number, not \(text.debugDescription)")
            }
            return nil
        }
        guard rate > 0, rate <= 1_000_000 else { exitWithUsageError("--connection-rate-per-ip must be above 0") }
        return rate
    }

    /// The connection cap from the flag or the environment; `nil` for the server's default (validated).
    var resolvedMaxConnections: Int? {
        self.maxConnections ?? configured("SWITCHBOARD_MAX_CONNECTIONS").flatMap { Int($0) }
    }

    /// The per-address cap from the flag or the environment; `nil` for none (validated).
    var resolvedMaxConnectionsPerIP: Int? {
        self.maxConnectionsPerIP ?? configured("SWITCHBOARD_MAX_CONNECTIONS_PER_IP").flatMap { Int($0) }
    }

    /// The shutdown deadline, from the flag, the environment or the default (validated by ``validate()``).
    var resolvedShutdownTimeout: Int {
        self.shutdownTimeout ?? configured("SWITCHBOARD_SHUTDOWN_TIMEOUT").flatMap { Int($0) } ?? 10
    }

    /// The address, from the flag, the environment or the default.
    var resolvedHost: String { self.host ?? configured("SWITCHBOARD_HOST") ?? "127.0.0.1" }

    /// The port, from the flag, the environment or the default (validated by ``validate()``).
    var resolvedPort: Int { self.port ?? configured("SWITCHBOARD_PORT").flatMap { Int($0) } ?? 8080 }

    /// The log level, from the flag, the environment or the default (validated by ``validate()``).
    var resolvedLogLevel: Logger.Level {
        (self.logLevel ?? configured("SWITCHBOARD_LOG_LEVEL")).flatMap { Logger.Level(rawValue: $0.lowercased()) }
            ?? .info
    }

    func validate() throws {
        if let level = self.logLevel, Logger.Level(rawValue: level.lowercased()) == nil {
            throw ValidationError(
                "--log-level must be one of trace, debug, info, notice, warning, error, critical, not \(level.debugDescription)"
            )
        }
        if !["text", "json"].contains(self.resolvedLogFormat) {
            throw ValidationError("--log-format must be text or json, not \(self.resolvedLogFormat.debugDescription)")
        }
        if let port = self.port, !(0...65535).contains(port) {
            throw ValidationError("--port must be between 0 and 65535, not \(port)")
        }
        for text in self.trustedProxies where IPAddressRange(text) == nil {
            throw ValidationError(
                "--trusted-proxy must be an IP address or a CIDR range (10.0.0.0/8), not \(text.debugDescription)")
        }
        try checkFlag("connection-rate-per-ip", self.connectionRatePerIP)
        if let seconds = self.shutdownTimeout, !(1...3600).contains(seconds) {
            throw ValidationError("--shutdown-timeout must be 1 to 3600 seconds, not \(seconds)")
        }
        let caps = [("--max-connections", self.maxConnections), ("--max-connections-per-ip", self.maxConnectionsPerIP)]
        for (flag, value) in caps {
            if let value, !Self.connectionCounts.contains(value) {
                throw ValidationError("\(flag) must be 1 to 10000000, not \(value)")
            }
        }
    }

    /// What a connection cap may be.
    static let connectionCounts = 1...10_000_000

    /// Reads `--config` (or `SWITCHBOARD_CONFIG`) into the layers beneath the flags; a file with problems is one
    /// line each (`FILE: line 3: …`) and exit code 64, before anything starts.
    func loadConfigFile() async {
        guard let path = self.config ?? environment("SWITCHBOARD_CONFIG") else { return }
        let problems = ConfigFile.problems(atPath: path)
        guard problems.isEmpty else {
            exitWithUsageError(problems.map { "\(path): \($0)" }.joined(separator: "\nswitchboard: "))
        }
        await loadSettingsLayers(configFile: path)
    }

    /// Checks the environment variables the flags did not override; a bad one is one line and exit code 64.
    func checkEnvironment() throws {
        if self.port == nil, let text = configured("SWITCHBOARD_PORT"), Int(text) == nil {
            exitWithUsageError("SWITCHBOARD_PORT must be a number, not \(text.debugDescription)")
        }
        guard (0...65535).contains(self.resolvedPort) else {
            exitWithUsageError("SWITCHBOARD_PORT must be between 0 and 65535, not \(self.resolvedPort)")
        }
        if self.shutdownTimeout == nil, let text = configured("SWITCHBOARD_SHUTDOWN_TIMEOUT"),
            !(Int(text).map { (1...3600).contains($0) } ?? false)
        {
            exitWithUsageError("SWITCHBOARD_SHUTDOWN_TIMEOUT must be 1 to 3600 seconds, not \(text.debugDescription)")
        }
        for (flag, variable) in [
            (self.maxConnections, "SWITCHBOARD_MAX_CONNECTIONS"),
            (self.maxConnectionsPerIP, "SWITCHBOARD_MAX_CONNECTIONS_PER_IP"),
        ] where flag == nil {
            if let text = configured(variable), !(Int(text).map { Self.connectionCounts.contains($0) } ?? false) {
                exitWithUsageError("\(variable) must be 1 to 10000000, not \(text.debugDescription)")
            }
        }
        if self.logLevel == nil, let level = configured("SWITCHBOARD_LOG_LEVEL"),
            Logger.Level(rawValue: level.lowercased()) == nil
        {
            exitWithUsageError(
                "SWITCHBOARD_LOG_LEVEL must be one of trace, debug, info, notice, warning, error, critical, not \(level.debugDescription)"
            )
        }
    }
}

/// The chat server's options.
struct ChatOptions: ParsableArguments {
    @Option(
        help: """
            Fan out through Redis, so several nodes chat together: redis://[[user]:password@]host[:port][/db], \
            or rediss://… for TLS (env SWITCHBOARD_REDIS). Without it, the embedded in-process broker.
            """
    )
    var redis: String?

    @Option(
        help: """
            rediss:// only: a PEM file of the CA certificates to trust for Redis (env SWITCHBOARD_REDIS_CA; \
            default: the system's trust roots).
            """
    )
    var redisCA: String?

    @Option(
        help: """
            rediss:// only: a PEM client certificate for Redis servers that require one (tls-auth-clients yes); \
            needs --redis-key (env SWITCHBOARD_REDIS_CERT).
            """
    )
    var redisCert: String?

    @Option(help: "rediss:// only: the PEM private key of --redis-cert (env SWITCHBOARD_REDIS_KEY).")
    var redisKey: String?

    @Option(
        name: .customLong("allowed-origin"),
        help: """
            A browser origin allowed to open WebSockets, e.g. https://chat.example.com; repeatable (env \
            SWITCHBOARD_ALLOWED_ORIGINS, comma-separated). Default: the page's own origin.
            """
    )
    var allowedOrigins: [String] = []

    @Option(
        help: """
            The URL browsers open the chat at, e.g. https://chat.example.com (env SWITCHBOARD_PUBLIC_URL); its \
            origin is the one allowed to open WebSockets when no --allowed-origin is given. Default: the --host \
            and --port address (for 127.0.0.1 also localhost and [::1]); none for 0.0.0.0.
            """
    )
    var publicURL: String?

    @Flag(
        help: """
            Refuse WebSocket requests without an Origin header (env SWITCHBOARD_REQUIRE_ORIGIN=1). By default \
            they are let in: they do not come from a browser page.
            """
    )
    var requireOrigin = false

    @Flag(
        help: """
            Serve GET /echo, a WebSocket echo for conformance runs and benchmarks (env SWITCHBOARD_ECHO=1). Off by \
            default: it accepts 16 MiB messages from any origin.
            """
    )
    var echo = false

    @Option(
        help: """
            The bearer token that POST /publish/{channel} requires (env SWITCHBOARD_PUBLISH_TOKEN). Without it \
            the publish API is off.
            """
    )
    var publishToken: String?

    @Option(
        name: .customLong("publish-key"),
        help: """
            A publish API key scoped to channels, name:secret:pattern[,pattern...] (e.g. \
            orders:8c1f...e2:orders.*,user:*); repeatable (env SWITCHBOARD_PUBLISH_KEYS, separated by ;). Room \
            channels (room:*) never take messages from the API.
            """
    )
    var publishKeys: [String] = []

    /// The publish keys from the flags or the environment (validated).
    var resolvedPublishKeys: [PublishKey] {
        Self.keys(
            self.publishKeys, variable: "SWITCHBOARD_PUBLISH_KEYS", flag: "--publish-key", parse: PublishKey.parse
        ).map { key in
            var key = key
            key.rate = self.resolvedKeyRate
            return key
        }
    }

    /// Keys from their repeatable flag, else the environment variable (separated by `;`); a bad one ends the process
    /// with a usage error.
    private static func keys<Key>(
        _ flags: [String], variable: String, flag: String, parse: (String) -> Result<Key, KeyError>
    ) -> [Key] {
        let texts = flags.isEmpty ? (configured(variable) ?? "").split(separator: ";").map(String.init) : flags
        return texts.map { text in
            switch parse(text) {
            case .success(let key): return key
            case .failure(let error): exitWithUsageError("\(flag): \(error)")
            }
        }
    }

    @Option(
        help: """
            With --redis: seconds a room member stays listed without a refresh from its node, the bound on ghost \
            users after a node crash (env SWITCHBOARD_PRESENCE_TTL; default 30).
            """
    )
    var presenceTTL: Int?

    var resolvedPresenceTTL: Int {
        self.presenceTTL ?? configured("SWITCHBOARD_PRESENCE_TTL").flatMap { Int($0) } ?? 30
    }

    @Option(
        name: .customLong("api-key"),
        help: """
            A server API key (/api/v1), name:secret:operations:patterns: operations * or some of publish,history,\
            presence,channels,info,disconnect,unsubscribe; patterns the channels it may act on (rooms as room:NAME), \
            e.g. backend:8c1f...e2:*:* ; repeatable (env SWITCHBOARD_API_KEYS, separated by ;). Publish keys and \
            the publish token also publish through the API.
            """
    )
    var apiKeys: [String] = []

    /// The server API keys from the flags or the environment (validated).
    var resolvedApiKeys: [ApiKey] {
        Self.keys(self.apiKeys, variable: "SWITCHBOARD_API_KEYS", flag: "--api-key", parse: ApiKey.parse).map { key in
            var key = key
            key.rate = self.resolvedKeyRate
            return key
        }
    }

    @Option(
        help: """
            How long the server API waits for every node's answer to info, channels, disconnect and unsubscribe, \
            in milliseconds; past it the answer says partial (env SWITCHBOARD_API_DEADLINE; default 1000).
            """
    )
    var apiDeadline: Int?

    static let apiDeadlineSetting = IntegerSetting("api-deadline", defaultValue: 1000)

    @Option(
        help: """
            Requests per second each API key, publish key and the publish token may make, after a burst of twice \
            as many; past it 429 with Retry-After (env SWITCHBOARD_API_RATE; default 2000).
            """
    )
    var apiRate: Int?

    static let apiRateSetting = IntegerSetting("api-rate", defaultValue: 2000)

    /// Each key's request rate.
    var resolvedKeyRate: TokenBucket.Limit {
        let rate = Double(Self.apiRateSetting.resolve(self.apiRate))
        return TokenBucket.Limit(rate: rate, burst: 2 * rate)
    }

    @Option(
        help: """
            The most rooms with members on this node; a join past it gets rooms_full (env SWITCHBOARD_MAX_ROOMS; \
            default 10000).
            """
    )
    var maxRooms: Int?

    @Option(
        help: """
            Messages of history kept per room for catch-up (env SWITCHBOARD_HISTORY_SIZE; default 1000).
            """
    )
    var historySize: Int?

    @Option(
        name: .customLong("history-ttl"),
        help: """
            Seconds a room message is kept; with --redis a room's stream expires that long after its last message \
            (env SWITCHBOARD_HISTORY_TTL; default 86400, a day).
            """
    )
    var historyTTL: Int?

    @Option(
        help: """
            Without --redis: MiB of room history kept in this process, over all rooms; past it the history of the \
            rooms nobody is in goes first, oldest first (env SWITCHBOARD_HISTORY_MEMORY; default 256).
            """
    )
    var historyMemory: Int?

    static let maxRoomsSetting = IntegerSetting("max-rooms", defaultValue: 10_000)
    static let historySizeSetting = IntegerSetting("history-size", defaultValue: 1000)
    static let historyTTLSetting = IntegerSetting("history-ttl", defaultValue: 86_400)
    static let historyMemorySetting = IntegerSetting("history-memory", defaultValue: 256)

    /// The history limits from the flags and the environment (validated).
    var resolvedHistory: RoomHistoryLimits {
        RoomHistoryLimits(
            messagesPerRoom: Self.historySizeSetting.resolve(self.historySize),
            maxAgeMilliseconds: Int64(Self.historyTTLSetting.resolve(self.historyTTL)) * 1000,
            maxRooms: Self.maxRoomsSetting.resolve(self.maxRooms),
            maxBytes: Self.historyMemorySetting.resolve(self.historyMemory) * 1024 * 1024)
    }

    var resolvedMaxRooms: Int { Self.maxRoomsSetting.resolve(self.maxRooms) }

    /// The Redis configuration, if any (validated by ``validate()``).
    var redisConfiguration: RedisConfiguration? {
        guard
            var configuration = (self.redis ?? configured("SWITCHBOARD_REDIS")).flatMap({
                try? RedisConfiguration(url: $0)
            })
        else { return nil }
        configuration.tls?.caFile = self.redisCA ?? configured("SWITCHBOARD_REDIS_CA")
        configuration.tls?.certificateFile = self.redisCert ?? configured("SWITCHBOARD_REDIS_CERT")
        configuration.tls?.keyFile = self.redisKey ?? configured("SWITCHBOARD_REDIS_KEY")
        return configuration
    }

    var resolvedAllowedOrigins: [String] {
        if !self.allowedOrigins.isEmpty { return self.allowedOrigins }
        return (configured("SWITCHBOARD_ALLOWED_ORIGINS") ?? "").split(separator: ",").map {
            String($0.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
        }.filter { !$0.isEmpty }
    }

    var resolvedPublicURL: String? { self.publicURL ?? configured("SWITCHBOARD_PUBLIC_URL") }

    var resolvedRequireOrigin: Bool { self.requireOrigin || configured("SWITCHBOARD_REQUIRE_ORIGIN") == "1" }

    var resolvedEcho: Bool { self.echo || configured("SWITCHBOARD_ECHO") == "1" }

    /// The browser origins allowed: the configured list, else the public URL's origin, else the listening address's.
    func resolvedOrigins(host: String, port: Int) -> [String] {
        if !self.resolvedAllowedOrigins.isEmpty { return self.resolvedAllowedOrigins }
        if let url = self.resolvedPublicURL, let origin = ChatOrigins.origin(ofPublicURL: url) { return [origin] }
        return ChatOrigins.origins(listeningOn: host, port: port)
    }

    var resolvedPublishToken: String? {
        (self.publishToken ?? configured("SWITCHBOARD_PUBLISH_TOKEN")).flatMap { $0.isEmpty ? nil : $0 }
    }

    func validate() throws {
        if let url = self.redis {
            do {
                _ = try RedisConfiguration(url: url)
            } catch {
                throw ValidationError("--redis: \(error)")
            }
        }
        let tlsFiles = [("--redis-ca", self.redisCA), ("--redis-cert", self.redisCert), ("--redis-key", self.redisKey)]
        for (flag, value) in tlsFiles where value != nil {
            guard self.redisConfiguration?.tls != nil else {
                throw ValidationError("\(flag) needs a rediss:// URL in --redis (TLS to Redis)")
            }
        }
        if (self.redisCert == nil) != (self.redisKey == nil) {
            throw ValidationError("--redis-cert and --redis-key go together")
        }
        for origin in self.allowedOrigins where !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) {
            throw ValidationError("--allowed-origin must look like https://host[:port], not \(origin.debugDescription)")
        }
        if let url = self.publicURL, ChatOrigins.origin(ofPublicURL: url) == nil {
            throw ValidationError("--public-url must look like https://host[:port][/path], not \(url.debugDescription)")
        }
        if let token = self.publishToken, token.count < 16 {
            throw ValidationError("--publish-token must have at least 16 characters")
        }
        if let ttl = self.presenceTTL, !(1...3600).contains(ttl) {
            throw ValidationError("--presence-ttl must be 1 to 3600 seconds, not \(ttl)")
        }
        try Self.maxRoomsSetting.validate(self.maxRooms)
        try Self.apiDeadlineSetting.validate(self.apiDeadline)
        try Self.apiRateSetting.validate(self.apiRate)
        try Self.historySizeSetting.validate(self.historySize)
        try Self.historyTTLSetting.validate(self.historyTTL)
        try Self.historyMemorySetting.validate(self.historyMemory)
    }

    /// Checks the environment variables the flags did not override; a bad one is one line and exit code 64.
    func checkEnvironment() {
        if self.redis == nil, let url = configured("SWITCHBOARD_REDIS") {
            do {
                _ = try RedisConfiguration(url: url)
            } catch {
                exitWithUsageError("SWITCHBOARD_REDIS: \(error)")
            }
        }
        for origin in self.resolvedAllowedOrigins where !(origin.hasPrefix("http://") || origin.hasPrefix("https://")) {
            exitWithUsageError(
                "SWITCHBOARD_ALLOWED_ORIGINS: each must look like https://host[:port], not \(origin.debugDescription)")
        }
        if self.publicURL == nil, let url = configured("SWITCHBOARD_PUBLIC_URL"),
            ChatOrigins.origin(ofPublicURL: url) == nil
        {
            exitWithUsageError(
                "SWITCHBOARD_PUBLIC_URL must look like https://host[:port][/path], not \(url.debugDescription)")
        }
        if self.publishToken == nil, let token = self.resolvedPublishToken, token.count < 16 {
            exitWithUsageError("SWITCHBOARD_PUBLISH_TOKEN must have at least 16 characters")
        }
        if self.presenceTTL == nil, let text = configured("SWITCHBOARD_PRESENCE_TTL"),
            !(Int(text).map { (1...3600).contains($0) } ?? false)
        {
            exitWithUsageError("SWITCHBOARD_PRESENCE_TTL must be 1 to 3600 seconds, not \(text.debugDescription)")
        }
        Self.maxRoomsSetting.checkEnvironment(self.maxRooms)
        Self.apiDeadlineSetting.checkEnvironment(self.apiDeadline)
        Self.apiRateSetting.checkEnvironment(self.apiRate)
        for text in (configured("SWITCHBOARD_API_KEYS") ?? "").split(separator: ";") where self.apiKeys.isEmpty {
            if case .failure(let error) = ApiKey.parse(String(text)) {
                exitWithUsageError("SWITCHBOARD_API_KEYS: \(error)")
            }
        }
        Self.historySizeSetting.checkEnvironment(self.historySize)
        Self.historyTTLSetting.checkEnvironment(self.historyTTL)
        Self.historyMemorySetting.checkEnvironment(self.historyMemory)
    }
}

/// Prints `switchboard: message` to standard error and exits with 64 (EX_USAGE), like a bad flag.
func exitWithUsageError(_ message: String) -> Never {
    printError("switchboard: \(message)")
    exit(64)
}

/// A non-empty environment variable, read directly: for what is not a setting (``configured(_:)`` for settings).
func environment(_ name: String) -> String? {
    guard let value = getenv(name) else { return nil }
    let text = String(cString: value)
    return text.isEmpty ? nil : text
}

/// The default subcommand: the Switchboard server.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the Switchboard chat server (the default)."
    )

    @OptionGroup var options: ServerOptions
    @OptionGroup var chat: ChatOptions
    @OptionGroup(title: "Identity") var auth: AuthOptions
    @OptionGroup(title: "Metrics") var metrics: MetricsOptions
    @OptionGroup(title: "Webhooks and backend hooks") var webhooks: WebhookOptions

    func run() async throws {
        try await Self.serve(
            self.options, chat: self.chat, auth: self.auth, metrics: self.metrics, webhooks: self.webhooks)
    }

    static func serve(
        _ options: ServerOptions, chat: ChatOptions, auth: AuthOptions, metrics: MetricsOptions,
        webhooks: WebhookOptions
    ) async throws {
        await options.loadConfigFile()
        try options.checkEnvironment()
        chat.checkEnvironment()
        let authentication = await auth.authentication()
        let hookConfiguration = webhooks.hookConfiguration()
        let webhooks = webhooks.configuration()
        try await runServer(options: options, metrics: metrics, name: "Switchboard chat") { group, logger, exporter in
            let origins = chat.resolvedOrigins(host: options.resolvedHost, port: options.resolvedPort)
            if origins.isEmpty {
                logger.warning(
                    "No browser origin is allowed: give --public-url (or --allowed-origin) so the page can connect",
                    metadata: ["host": "\(options.resolvedHost)", "port": "\(options.resolvedPort)"])
            }
            var configuration = ChatConfiguration(
                allowedOrigins: origins,
                requiresOrigin: chat.resolvedRequireOrigin,
                servesEcho: chat.resolvedEcho,
                publishToken: chat.resolvedPublishToken,
                publishKeys: chat.resolvedPublishKeys,
                apiKeys: chat.resolvedApiKeys,
                clusterDeadline: .milliseconds(Int64(ChatOptions.apiDeadlineSetting.resolve(chat.apiDeadline))),
                maxRooms: chat.resolvedMaxRooms,
                history: chat.resolvedHistory,
                auth: authentication,
                rateLimits: auth.rateLimits
            )
            configuration.publishTokenRate = chat.resolvedKeyRate
            if !hookConfiguration.isEmpty {
                configuration.hooks =
                    BackendHooks(configuration: hookConfiguration, eventLoopGroup: group, logger: logger).chatHooks
            }
            Self.describe(authentication, logger: logger)
            var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
            if let verifier = authentication.verifier, let path = auth.resolvedJWKSFile {
                services.append(.init(service: JWKSReloader.file(path, verifier: verifier, logger: logger)))
            }
            if let verifier = authentication.verifier, let url = auth.resolvedJWKSURL {
                let reloader = JWKSReloader.url(
                    url, every: auth.resolvedJWKSRefresh, verifier: verifier, logger: logger)
                services.append(.init(service: reloader))
            }
            // With metrics off nothing is recorded, not even a clock read per message.
            let factory = exporter?.factory
            let counters = ChatCounters()
            var dispatcher: WebhookDispatcher?
            if let hooks = webhooks {
                let made = WebhookDispatcher(configuration: hooks, eventLoopGroup: group, logger: logger)
                dispatcher = made
                exporter?.observe(webhooks: made)
                services.append(.init(service: made))
                logger.info(
                    "Webhooks on", metadata: ["urls": "\(hooks.urls.map(\.description).joined(separator: ", "))"])
            }
            guard let redis = chat.redisConfiguration else {
                let topics = Topics(broker: LocalBroker(), logger: logger, metricsFactory: factory)
                exporter?.observe(topics: topics, chat: counters)
                let observer = dispatcher.map { WebhookEvents(dispatcher: $0, eventLoop: group.next()) }
                // After the dispatcher, so it stops first: at shutdown the leaves still waiting go out at once, for
                // the dispatcher to drain.
                if let observer { services.append(.init(service: observer)) }
                return (
                    ChatApplication.make(
                        topics: topics, configuration: configuration, counters: counters, observer: observer,
                        logger: logger),
                    services
                )
            }
            // Two Redis connections per process: one for commands (PUBLISH, history, presence), one subscriber.
            let client = RedisClient(configuration: redis, eventLoop: group.next(), logger: logger)
            let broker = RedisBroker(client: client, eventLoopGroup: group, logger: logger, metricsFactory: factory)
            // With Redis, rooms and members are counted there: each event once per cluster. Presence tells the
            // counts of what no socket here did: a crashed node's members swept out, this node's stored again.
            let observer = dispatcher.map {
                RedisWebhookEvents(dispatcher: $0, client: client, logger: logger)
            }
            // Polls for the leaves due (any node sends them): stops before the dispatcher and the client.
            if let observer { services.append(.init(service: observer)) }
            let presence = RedisPresence(
                client: client, ttl: .seconds(chat.resolvedPresenceTTL), logger: logger, observer: observer)
            let topics = Topics(broker: broker, logger: logger, metricsFactory: factory)
            exporter?.observe(topics: topics, chat: counters)
            exporter?.observe(redis: client, broker: broker)
            let application = ChatApplication.make(
                topics: topics,
                configuration: configuration,
                health: { BrokerHealth(kind: "redis", unavailable: await broker.unreadiness(timeout: .seconds(1))) },
                roomLog: RedisRoomLog(client: client, limits: configuration.history),
                presence: presence,
                counters: counters,
                observer: observer,
                logger: logger
            )
            // Started in this order and shut down in reverse: the server stops first, presence removes this node's
            // members while the client still runs, and the client closes last.
            services =
                [
                    .init(service: client),
                    .init(service: broker),
                    .init(service: presence),
                    .init(
                        service: RedisStartupReport(broker: broker, configuration: redis, logger: logger),
                        successTerminationBehavior: .ignore),
                ] + services
            return (application, services)
        }
    }
}

/// `hijack-demo`: the seed's `hijack.ru`.
struct HijackDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hijack-demo",
        abstract: "Serve the seed's hijack.ru: GET /hijack_req (full hijack) and GET /hijack_res (partial hijack)."
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        await self.options.loadConfigFile()
        try self.options.checkEnvironment()
        try await runServer(options: self.options, name: "Hijack demo") { _, _, _ in
            (HijackDemo.makeApplication(), [])
        }
    }
}
