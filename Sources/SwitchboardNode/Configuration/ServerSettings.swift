public import Logging
public import SwitchboardServer

/// Where and how the node listens: address, port, connection limits, proxies, TLS, shutdown.
public struct ServerSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    /// Seconds a graceful shutdown may take before open connections are cut.
    public var shutdownTimeout = 10
    /// The most connections open at once; `nil` for the open-file limit less 64.
    public var maxConnections: Int?
    /// The most connections open at once from one address (not a trusted proxy's; not loopback ones with
    /// ``exemptLoopback``).
    public var maxConnectionsPerIP = 256
    /// Whether loopback peers are left out of the per-IP caps (connections, WebSockets, messages, rooms, wrong keys).
    public var exemptLoopback = false
    /// New connections per second per address, after a burst of twice as many.
    public var connectionRatePerIP: Double?
    public var trustedProxies: [IPAddressRange] = []
    /// The PEM certificate chain and key for https and wss; both or neither.
    public var tlsCertificate: String?
    public var tlsKey: String?

    public init() {}

    static let host = Setting("host", .text, default: "127.0.0.1", help: "The address to listen on.")
    static let port = Setting(
        "port", .integer(0...65535, unit: ""), default: "8080", help: "The TCP port to listen on, 0 for any free one.")
    static let shutdownTimeout = Setting(
        "shutdown-timeout", .integer(1...3600, unit: " seconds"), default: "10",
        help: "Seconds a graceful shutdown (SIGTERM, SIGINT) may take before open connections are cut.")
    static let maxConnections = Setting(
        "max-connections", .integer(connectionCounts, unit: ""), defaultNote: "the open-file limit less 64",
        help: "The most connections open at once; past it new ones get 503 with Retry-After.")
    static let maxConnectionsPerIP = Setting(
        "max-connections-per-ip", .integer(connectionCounts, unit: ""), default: "256",
        help: "The most connections open at once from one IP address; past it new ones get 503. Not for a "
            + "--trusted-proxy (its clients are counted by the WebSocket caps), nor loopback peers with "
            + "--exempt-loopback.")
    static let exemptLoopback = Setting(
        "exempt-loopback", .toggle, default: "false",
        help: "Leave loopback peers (127.0.0.0/8, ::1) out of the per-IP caps (connections, WebSockets, messages, "
            + "rooms, wrong keys): for a load generator or tools on this machine. A local proxy is better made a "
            + "--trusted-proxy, so each of its clients is counted. The connection rate, when set, still applies.")
    static let connectionRatePerIP = Setting(
        "connection-rate-per-ip", .number(atMost: 1_000_000), defaultNote: "no limit",
        help: "New connections (WebSocket handshakes included) per second from one IP address, after a burst of "
            + "twice as many; past it 503.")
    static let trustedProxies = Setting(
        "trusted-proxy", .list(separator: ","), variable: "SWITCHBOARD_TRUSTED_PROXIES", defaultNote: "none",
        help: "An address or CIDR range (10.0.0.0/8, ::1) of a proxy in front of the server; repeatable. Its "
            + "X-Forwarded-For and X-Forwarded-Proto are believed: logs and the per-IP limits see the client."
    ) { value in
        IPAddressRange(value) == nil
            ? "each must be an IP address or a CIDR range (10.0.0.0/8), not \(value.debugDescription)" : nil
    }
    static let tlsCertificate = Setting(
        "tls-cert", .file,
        help: "Serve https:// and wss:// with this PEM certificate chain (the server's certificate first); needs "
            + "--tls-key. SIGHUP reads both files again; open connections keep their certificate.")
    static let tlsKey = Setting("tls-key", .file, help: "The PEM private key of --tls-cert.")

    /// What a connection cap may be.
    public static let connectionCounts = 1...10_000_000

    static let settings = [
        host, port, shutdownTimeout, maxConnections, maxConnectionsPerIP, exemptLoopback, connectionRatePerIP,
        trustedProxies, tlsCertificate, tlsKey,
    ]

    /// Reads the server's settings.
    public init(_ parser: inout SettingsParser) {
        self.host = parser.text(Self.host) ?? self.host
        self.port = parser.integer(Self.port) ?? self.port
        self.shutdownTimeout = parser.integer(Self.shutdownTimeout) ?? self.shutdownTimeout
        self.maxConnections = parser.integer(Self.maxConnections)
        self.maxConnectionsPerIP = parser.integer(Self.maxConnectionsPerIP) ?? self.maxConnectionsPerIP
        self.exemptLoopback = parser.toggle(Self.exemptLoopback)
        self.connectionRatePerIP = parser.number(Self.connectionRatePerIP)
        self.trustedProxies = parser.list(Self.trustedProxies, IPAddressRange.init)
        self.tlsCertificate = parser.text(Self.tlsCertificate)
        self.tlsKey = parser.text(Self.tlsKey)
        switch (self.tlsCertificate, self.tlsKey) {
        case (.some, nil): parser.report("tls-cert needs tls-key (the certificate's private key)")
        case (nil, .some): parser.report("tls-key needs tls-cert (the certificate chain)")
        default: break
        }
    }
}

/// How the node logs.
public struct LogSettings: Sendable {
    /// `text` (a line each, for people) or `json` (an object per line, for log collectors).
    public enum Format: String, Sendable {
        case text, json
    }

    public var level = Logger.Level.info
    public var format = Format.text

    public init() {}

    static let level = Setting(
        "log-level", .choice(Logger.Level.allCases.map(\.rawValue)), default: "info",
        help: "The log level: trace, debug, info, notice, warning, error or critical.")
    static let format = Setting(
        "log-format", .choice(["text", "json"]), default: "text",
        help: "text (one line each, for people) or json (one object per line: time, level, label, message, source, "
            + "metadata; for log collectors).")

    static let settings = [level, format]

    public init(_ parser: inout SettingsParser) {
        self.level = parser.text(Self.level).flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? self.level
        self.format = parser.text(Self.format).flatMap { Format(rawValue: $0.lowercased()) } ?? self.format
    }
}
