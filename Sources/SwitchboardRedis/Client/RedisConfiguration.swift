/// Where a Redis server is and how to talk to it.
///
/// Parse one from a URL with ``init(url:)``: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS.
public struct RedisConfiguration: Sendable, Hashable {
    /// The server's host name or IP address.
    public var host: String
    /// The server's TCP port.
    public var port: Int
    /// The ACL user for `AUTH`; `nil` authenticates as the default user (or not at all without a password).
    public var username: String?
    /// The password for `AUTH`; `nil` skips `AUTH`.
    public var password: String?
    /// The database number for `SELECT`; 0 skips it. Pub/sub ignores databases: channels are server-wide.
    public var database: Int
    /// How long to wait for the TCP connection and the handshake (`AUTH`, `SELECT`).
    public var connectTimeout: Duration
    /// How long a command may wait for its reply (3 s by default, as go-redis waits). A reply overdue means the
    /// connection is stuck or half-open: every pending command fails and the connection is closed.
    public var commandTimeout: Duration
    /// How often an idle connection sends `PING`, so a silently dead peer is noticed within about
    /// `healthCheckInterval + commandTimeout`.
    public var healthCheckInterval: Duration
    /// The most commands waiting for replies on one connection; more fail at once instead of queueing.
    public var maxPendingCommands: Int
    /// The most bytes of commands queued or waiting for replies on one connection; more fail at once. A hung Redis
    /// (alive, not answering) then costs at most this much memory per connection until the command timeout.
    public var maxPendingBytes: Int
    /// What the reply decoder accepts.
    public var limits: RESPLimits
    /// TLS to the server (`rediss://`), or `nil` for plain TCP.
    public var tls: RedisTLS?

    /// Creates a configuration.
    public init(
        host: String = "127.0.0.1",
        port: Int = 6379,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        connectTimeout: Duration = .seconds(5),
        commandTimeout: Duration = .seconds(3),
        healthCheckInterval: Duration = .seconds(10),
        maxPendingCommands: Int = 16_384,
        maxPendingBytes: Int = 16 * 1024 * 1024,
        limits: RESPLimits = .init(),
        tls: RedisTLS? = nil
    ) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
        self.healthCheckInterval = healthCheckInterval
        self.maxPendingCommands = maxPendingCommands
        self.maxPendingBytes = maxPendingBytes
        self.limits = limits
        self.tls = tls
    }

    /// Parses `redis://[[user]:password@]host[:port][/db]`, or the same with `rediss://` for TLS (verified
    /// against the system's trust roots unless ``tls`` is given a CA file); user and password may be percent-encoded.
    ///
    /// - Throws: ``RedisURLError`` saying what is wrong with the URL.
    public init(url: String) throws(RedisURLError) {
        self.init()
        let scheme: String
        if url.hasPrefix("redis://") {
            scheme = "redis://"
        } else if url.hasPrefix("rediss://") {
            scheme = "rediss://"
            self.tls = RedisTLS()
        } else {
            throw RedisURLError(url, "it must start with redis:// or rediss:// (unix sockets are not supported)")
        }
        var rest = Substring(url.dropFirst(scheme.count))
        if let query = rest.firstIndex(where: { $0 == "?" || $0 == "#" }) {
            throw RedisURLError(url, "query and fragment are not supported (\(rest[query...]))")
        }
        var path = Substring("")
        if let slash = rest.firstIndex(of: "/") {
            path = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
        }
        if let at = rest.lastIndex(of: "@") {
            let userInfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = userInfo.firstIndex(of: ":") {
                let user = userInfo[..<colon]
                self.username = user.isEmpty ? nil : try Self.decodePercent(user, in: url)
                self.password = try Self.decodePercent(userInfo[userInfo.index(after: colon)...], in: url)
            } else if !userInfo.isEmpty {
                // `redis://secret@host` is the password, as redis-cli and most clients read it.
                self.password = try Self.decodePercent(userInfo, in: url)
            }
        }
        try self.parseHostAndPort(rest, in: url)
        if !path.isEmpty {
            guard let database = Int(path), database >= 0, path.allSatisfy(\.isASCII) else {
                throw RedisURLError(url, "the path must be a database number, not \(path.debugDescription)")
            }
            self.database = database
        }
    }

    private mutating func parseHostAndPort(_ authority: Substring, in url: String) throws(RedisURLError) {
        var host = authority
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw RedisURLError(url, "an IPv6 host lacks ]") }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw RedisURLError(url, "unexpected text after the host") }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        }
        guard !host.isEmpty else { throw RedisURLError(url, "the host is missing") }
        self.host = String(host)
        if let portText {
            guard let port = Int(portText), (1...65535).contains(port), portText.allSatisfy(\.isASCII) else {
                throw RedisURLError(url, "the port must be a number from 1 to 65535, not \(portText.debugDescription)")
            }
            self.port = port
        }
    }

    private static func decodePercent(_ text: Substring, in url: String) throws(RedisURLError) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue)
            else { throw RedisURLError(url, "a % escape in the credentials is not two hex digits") }
            bytes.append(high << 4 | low)
        }
        guard let decoded = String(validating: bytes, as: UTF8.self) else {
            throw RedisURLError(url, "the credentials are not UTF-8")
        }
        return decoded
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension RedisConfiguration: CustomStringConvertible {
    /// The server's URL without the password, for logs.
    public var description: String {
        let user = self.username.map { "\($0)@" } ?? (self.password != nil ? "***@" : "")
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return "\(self.tls == nil ? "redis" : "rediss")://\(user)\(host):\(self.port)"
            + (self.database != 0 ? "/\(self.database)" : "")
    }
}

/// A Redis URL that cannot be used.
public struct RedisURLError: Error, Hashable, CustomStringConvertible {
    /// The URL, with any password masked.
    public let url: String
    /// What is wrong with it.
    public let reason: String

    init(_ url: String, _ reason: String) {
        self.url = Self.masked(url)
        self.reason = reason
    }

    public var description: String { "invalid Redis URL \(self.url): \(self.reason)" }

    private static func masked(_ url: String) -> String {
        // Only a URL's authority (before the first "/" after the scheme) holds credentials.
        let schemeEnd =
            url.hasPrefix("redis://")
            ? url.index(url.startIndex, offsetBy: 8)
            : url.hasPrefix("rediss://") ? url.index(url.startIndex, offsetBy: 9) : url.startIndex
        let authorityEnd = url[schemeEnd...].firstIndex(of: "/") ?? url.endIndex
        guard let at = url[schemeEnd..<authorityEnd].lastIndex(of: "@") else { return url }
        let userInfo = url[schemeEnd..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url[..<schemeEnd] + "***" + url[at...] }
        return url[..<colon] + ":***" + url[at...]
    }
}

/// TLS to Redis (`rediss://`): which CA to trust and, for servers that require one (`tls-auth-clients yes`), the
/// client's certificate.
public struct RedisTLS: Sendable, Hashable {
    /// A PEM file of the CA certificates to trust; `nil` trusts the system's roots.
    public var caFile: String?
    /// A PEM client certificate chain to present; needs ``keyFile``.
    public var certificateFile: String?
    /// The PEM private key of ``certificateFile``.
    public var keyFile: String?
    /// The name the server's certificate must carry; `nil` checks the configuration's host (a host name, or an IP
    /// address in the certificate's subject alternative names).
    public var serverName: String?

    /// Creates TLS settings; with no arguments, the system's trust roots and no client certificate.
    public init(
        caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil, serverName: String? = nil
    ) {
        self.caFile = caFile
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.serverName = serverName
    }
}
