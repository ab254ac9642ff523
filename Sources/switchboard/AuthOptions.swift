import ArgumentParser
import Foundation
import SwitchboardAuth
import SwitchboardChat

/// Who may connect: token keys, anonymous access, members-only rooms (README, "Securing Switchboard").
struct AuthOptions: ParsableArguments {
    @Option(
        help: """
            An HMAC secret that connection tokens are signed with, 32 bytes or more (env SWITCHBOARD_JWT_SECRET). \
            With a key, sockets must send a token unless --allow-anonymous is given.
            """
    )
    var jwtSecret: String?

    @Option(
        help:
            "The HMAC algorithm of --jwt-secret: HS256, HS384 or HS512 (env SWITCHBOARD_JWT_ALGORITHM; default HS256).")
    var jwtAlgorithm: String?

    @Option(
        help: """
            A PEM file with the public key tokens are signed with: RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA) \
            (env SWITCHBOARD_JWT_PUBLIC_KEY).
            """
    )
    var jwtPublicKey: String?

    @Option(
        name: .customLong("jwks-file"),
        help: """
            A JWKS document of the keys tokens are signed with (each key names its kid and alg), read again every \
            minute so keys can rotate (env SWITCHBOARD_JWKS_FILE).
            """
    )
    var jwksFile: String?

    @Option(
        name: .customLong("jwks-url"),
        help: """
            An http(s) URL of a JWKS document (an identity provider's keys), fetched at start and every 5 minutes \
            (env SWITCHBOARD_JWKS_URL). A start without it reachable fails; a failed refresh keeps the keys in use.
            """
    )
    var jwksURL: String?

    var resolvedJWKSURL: String? { self.value(self.jwksURL, "SWITCHBOARD_JWKS_URL") }

    @Option(help: "Seconds between fetches of --jwks-url (env SWITCHBOARD_JWKS_REFRESH; default 300).")
    var jwksRefresh: Int?

    var resolvedJWKSRefresh: Duration {
        let seconds = self.jwksRefresh ?? configured("SWITCHBOARD_JWKS_REFRESH").flatMap { Int($0) } ?? 300
        guard (1...86_400).contains(seconds) else { exitWithUsageError("--jwks-refresh must be 1 to 86400 seconds") }
        return .seconds(seconds)
    }

    @Option(help: "When set, a token's aud must include it (env SWITCHBOARD_JWT_AUDIENCE).")
    var jwtAudience: String?

    @Option(help: "When set, a token's iss must equal it (env SWITCHBOARD_JWT_ISSUER).")
    var jwtIssuer: String?

    @Flag(
        help: """
            With a token key: let sockets without a token in too, with a nickname, to public rooms \
            (env SWITCHBOARD_ALLOW_ANONYMOUS=1). Without a key, anonymous access is the only kind.
            """
    )
    var allowAnonymous = false

    @Option(
        name: .customLong("private-room"),
        help: """
            A members-only room pattern (* matches any run, e.g. team-*); only tokens whose rooms claim lists the \
            room may join it; repeatable (env SWITCHBOARD_PRIVATE_ROOMS, comma-separated).
            """
    )
    var privateRooms: [String] = []

    @Option(
        help: """
            Room messages a /ws socket may send per second, after a burst of twice as many; a user over all their \
            sockets twice that (env SWITCHBOARD_SAY_RATE; default 20).
            """
    )
    var sayRate: Double?

    /// The rate limits, from the flag or the environment (validated).
    var rateLimits: ChatRateLimits {
        var limits = ChatRateLimits()
        let text = configured("SWITCHBOARD_SAY_RATE")
        guard let rate = self.sayRate ?? text.flatMap(Double.init) else {
            if let text { exitWithUsageError("SWITCHBOARD_SAY_RATE must be a number, not \(text.debugDescription)") }
            return limits
        }
        guard rate > 0, rate <= 1_000_000 else { exitWithUsageError("--say-rate must be above 0 and at most 1000000") }
        limits.sayMessages = .init(rate: rate, burst: 2 * rate)
        limits.userSayMessages = .init(rate: 2 * rate, burst: 4 * rate)
        return limits
    }

    private func value(_ flag: String?, _ variable: String) -> String? { flag ?? configured(variable) }

    func validate() throws {
        try checkFlag("jwt-algorithm", self.jwtAlgorithm)
        try checkFlag("jwks-url", self.jwksURL)
        try checkFlag("jwks-refresh", self.jwksRefresh)
        try checkFlag("say-rate", self.sayRate)
        for room in self.privateRooms { try checkFlag("private-room", room) }
    }

    var resolvedJWKSFile: String? { self.value(self.jwksFile, "SWITCHBOARD_JWKS_FILE") }

    /// The verification keys configured, or none; a bad key or file is one line and exit code 64.
    func keys() async -> [VerificationKey] {
        var keys: [VerificationKey] = []
        do {
            if let secret = self.value(self.jwtSecret, "SWITCHBOARD_JWT_SECRET") {
                let name = (self.value(self.jwtAlgorithm, "SWITCHBOARD_JWT_ALGORITHM") ?? "HS256").uppercased()
                guard let algorithm = VerificationKey.Algorithm(rawValue: name), name.hasPrefix("HS") else {
                    exitWithUsageError("--jwt-algorithm must be HS256, HS384 or HS512, not \(name.debugDescription)")
                }
                keys.append(try .hmac(secret: secret, algorithm: algorithm))
            }
            if let path = self.value(self.jwtPublicKey, "SWITCHBOARD_JWT_PUBLIC_KEY") {
                keys.append(try .publicKey(pem: try Self.read(path)))
            }
            if let path = self.resolvedJWKSFile {
                keys += try VerificationKey.keySet(json: try Self.read(path))
            }
            if let url = self.resolvedJWKSURL {
                keys += try VerificationKey.keySet(json: try await JWKSFetcher(url: url).fetch())
            }
        } catch {
            exitWithUsageError("token keys: \(error)")
        }
        return keys
    }

    /// The settings the chat takes, with a verifier when a key is configured.
    func authentication() async -> ChatAuthentication {
        var patterns: [ChannelPattern] = []
        let rooms =
            self.privateRooms.isEmpty
            ? (configured("SWITCHBOARD_PRIVATE_ROOMS") ?? "").split(separator: ",").map {
                $0.trimmingCharacters(in: .whitespaces)
            }
            : self.privateRooms
        for room in rooms where !room.isEmpty {
            guard let pattern = ChannelPattern(room) else {
                exitWithUsageError("--private-room: 1 to 128 bytes, not \(room.debugDescription)")
            }
            patterns.append(pattern)
        }
        let keys = await self.keys()
        guard !keys.isEmpty else {
            if !patterns.isEmpty {
                exitWithUsageError("--private-room needs a token key (--jwt-secret, --jwt-public-key or --jwks-file)")
            }
            return ChatAuthentication()
        }
        let policy = TokenVerifier.Policy(
            audience: self.value(self.jwtAudience, "SWITCHBOARD_JWT_AUDIENCE"),
            issuer: self.value(self.jwtIssuer, "SWITCHBOARD_JWT_ISSUER"))
        do {
            let verifier = try await TokenVerifier(keys: keys, policy: policy)
            let anonymous = self.allowAnonymous || configured("SWITCHBOARD_ALLOW_ANONYMOUS") == "1"
            return ChatAuthentication(verifier: verifier, allowsAnonymous: anonymous, privateRooms: patterns)
        } catch {
            exitWithUsageError("token keys: \(error)")
        }
    }

    /// A file's text; a missing or unreadable one says which.
    static func read(_ path: String) throws -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw KeyFileError(path: path)
        }
    }
}

/// A key file that cannot be read.
struct KeyFileError: Error, CustomStringConvertible {
    var path: String
    var description: String { "cannot read \(self.path)" }
}
