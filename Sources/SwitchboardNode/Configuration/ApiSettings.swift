package import SwitchboardApi
public import SwitchboardAuth

/// The server API's keys and limits (`/api/v1` and `POST /publish/{channel}`).
public struct ApiSettings: Sendable {
    /// A key for every channel (`publish` only); the API is off without any key.
    public var publishToken: String?
    package var publishKeys: [PublishKey] = []
    package var apiKeys: [ApiKey] = []
    /// Milliseconds a cluster question waits for every node.
    public var deadline = 1000
    /// Requests per second each key may make, after a burst of twice as many.
    public var rate = 2000

    public init() {}

    static let publishToken = Setting(
        "publish-token", .text, secret: true, defaultNote: "none: the publish API is off",
        help: "The bearer token that POST /publish/{channel} requires for every channel (16 characters or more)."
    ) { value in
        value.count < 16 ? "must have at least 16 characters" : nil
    }
    static let publishKeys = Setting(
        "publish-key", .list(separator: ";"), variable: "SWITCHBOARD_PUBLISH_KEYS", secret: true, defaultNote: "none",
        help: "A publish API key scoped to channels, name:secret:pattern[,pattern...] (e.g. orders:8c1f...e2:orders.*,"
            + "user:*); repeatable. Room channels (room:*) never take messages from the API."
    ) { value in
        switch PublishKey.parse(value) {
        case .success: return nil
        case .failure(let error): return "\(error)"
        }
    }
    static let apiKeys = Setting(
        "api-key", .list(separator: ";"), variable: "SWITCHBOARD_API_KEYS", secret: true,
        defaultNote: "none: /api/v1 answers only publish keys and the token",
        help: "A server API key (/api/v1), name:secret:operations:patterns: operations * or some of publish,history,"
            + "presence,channels,info,disconnect,unsubscribe; patterns the channels it may act on (rooms as "
            + "room:NAME); repeatable. Publish keys and the publish token also publish through the API."
    ) { value in
        switch ApiKey.parse(value) {
        case .success: return nil
        case .failure(let error): return "\(error)"
        }
    }
    static let deadline = Setting(
        "api-deadline", .integer(1...60_000, unit: " ms"), default: "1000",
        help: "How long the server API waits for every node's answer to info, channels, disconnect and unsubscribe, "
            + "in milliseconds; past it the answer says partial.")
    static let rate = Setting(
        "api-rate", .integer(1...10_000_000, unit: " requests/s"), default: "2000",
        help: "Requests per second each API key, publish key and the publish token may make (one bucket per key, "
            + "whichever endpoint it uses), after a burst of twice as many; past it 429 with Retry-After.")

    static let settings = [publishToken, publishKeys, apiKeys, deadline, rate]

    public init(_ parser: inout SettingsParser) {
        self.publishToken = parser.text(Self.publishToken)
        self.publishKeys = parser.list(Self.publishKeys) { try? PublishKey.parse($0).get() }
        self.apiKeys = parser.list(Self.apiKeys) { try? ApiKey.parse($0).get() }
        self.deadline = parser.integer(Self.deadline) ?? self.deadline
        self.rate = parser.integer(Self.rate) ?? self.rate
    }

    /// The server API's configuration.
    package var configuration: ApiConfiguration {
        let rate = TokenBucket.Limit(rate: Double(self.rate), burst: 2 * Double(self.rate))
        return ApiConfiguration(
            apiKeys: self.apiKeys.map { $0.at(rate) }, publishKeys: self.publishKeys.map { $0.at(rate) },
            publishToken: self.publishToken, keyRate: rate)
    }
}

/// Who may connect: token keys, anonymous access, members-only rooms (docs/SECURITY.md).
public struct IdentitySettings: Sendable {
    public var jwtSecret: String?
    /// HS256, HS384 or HS512.
    public var jwtAlgorithm = "HS256"
    public var jwtPublicKey: String?
    public var jwksFile: String?
    public var jwksURL: String?
    /// Seconds between fetches of ``jwksURL``.
    public var jwksRefresh = 300
    public var jwtAudience: String?
    public var jwtIssuer: String?
    public var allowAnonymous = false
    public var privateRooms: [ChannelPattern] = []

    public init() {}

    /// Whether any token key is configured.
    public var hasKey: Bool {
        self.jwtSecret != nil || self.jwtPublicKey != nil || self.jwksFile != nil || self.jwksURL != nil
    }

    static let jwtSecret = Setting(
        "jwt-secret", .text, secret: true,
        help: "An HMAC secret that connection tokens are signed with, 32 bytes or more. With a key, sockets must send "
            + "a token unless --allow-anonymous is given."
    ) { value in
        value.utf8.count < 32 ? "must have 32 bytes or more (48 for HS384, 64 for HS512)" : nil
    }
    static let jwtAlgorithm = Setting(
        "jwt-algorithm", .choice(["HS256", "HS384", "HS512"]), default: "HS256",
        help: "The HMAC algorithm of --jwt-secret: HS256, HS384 or HS512.")
    static let jwtPublicKey = Setting(
        "jwt-public-key", .file,
        help: "A PEM file with the public key tokens are signed with: RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA)."
    )
    static let jwksFile = Setting(
        "jwks-file", .file,
        help: "A JWKS document of the keys tokens are signed with (each key names its kid and alg), read again every "
            + "minute so keys can rotate.")
    static let jwksURL = Setting(
        "jwks-url", .text,
        help: "An http(s) URL of a JWKS document (an identity provider's keys), fetched at start and every "
            + "--jwks-refresh seconds. A start without it reachable fails; a failed refresh keeps the keys in use."
    ) { value in
        value.hasPrefix("http://") || value.hasPrefix("https://")
            ? nil : "must be an http:// or https:// URL, not \(value.debugDescription)"
    }
    static let jwksRefresh = Setting(
        "jwks-refresh", .integer(1...86_400, unit: " seconds"), default: "300",
        help: "Seconds between fetches of --jwks-url.")
    static let jwtAudience = Setting(
        "jwt-audience", .text, defaultNote: "not checked", help: "When set, a token's aud must include it.")
    static let jwtIssuer = Setting(
        "jwt-issuer", .text, defaultNote: "not checked", help: "When set, a token's iss must equal it.")
    static let allowAnonymous = Setting(
        "allow-anonymous", .toggle, default: "false",
        help: "With a token key: let sockets without a token in too, with a nickname, to public rooms. Without a key, "
            + "anonymous access is the only kind.")
    static let privateRooms = Setting(
        "private-room", .list(separator: ","), variable: "SWITCHBOARD_PRIVATE_ROOMS", defaultNote: "none",
        help: "A members-only room pattern (* matches any run, e.g. team-*); only tokens whose rooms claim lists the "
            + "room may join it; repeatable."
    ) { value in
        ChannelPattern(value) == nil ? "each must be 1 to 128 bytes, not \(value.debugDescription)" : nil
    }

    static let settings = [
        jwtSecret, jwtAlgorithm, jwtPublicKey, jwksFile, jwksURL, jwksRefresh, jwtAudience, jwtIssuer, allowAnonymous,
        privateRooms,
    ]

    public init(_ parser: inout SettingsParser) {
        self.jwtSecret = parser.text(Self.jwtSecret)
        self.jwtAlgorithm = parser.text(Self.jwtAlgorithm)?.uppercased() ?? self.jwtAlgorithm
        self.jwtPublicKey = parser.text(Self.jwtPublicKey)
        self.jwksFile = parser.text(Self.jwksFile)
        self.jwksURL = parser.text(Self.jwksURL)
        self.jwksRefresh = parser.integer(Self.jwksRefresh) ?? self.jwksRefresh
        self.jwtAudience = parser.text(Self.jwtAudience)
        self.jwtIssuer = parser.text(Self.jwtIssuer)
        self.allowAnonymous = parser.toggle(Self.allowAnonymous)
        self.privateRooms = parser.list(Self.privateRooms, ChannelPattern.init)
        if let secret = self.jwtSecret {
            let needed = ["HS384": 48, "HS512": 64][self.jwtAlgorithm] ?? 32
            if secret.utf8.count < needed {
                parser.report("jwt-secret must have \(needed) bytes or more for \(self.jwtAlgorithm)")
            }
        }
    }
}

extension ApiKey {
    fileprivate func at(_ rate: TokenBucket.Limit) -> ApiKey {
        var key = self
        key.rate = rate
        return key
    }
}

extension PublishKey {
    fileprivate func at(_ rate: TokenBucket.Limit) -> PublishKey {
        var key = self
        key.rate = rate
        return key
    }
}
