public import FoundationEssentials
import JWTKit
import SwitchboardLocks

/// Verifies connection tokens (JWT) into an ``Identity``.
///
/// The order matters: the size, then the header (the algorithm it names must be the one of the key it picks), then
/// the signature (by jwt-kit), then the claims with this verifier's clock. Errors never contain the token.
public final class TokenVerifier: Sendable {
    /// What a token must satisfy beyond its signature.
    public struct Policy: Sendable {
        /// When set, `aud` must include it.
        public var audience: String?
        /// When set, `iss` must equal it.
        public var issuer: String?
        /// Clock skew allowed for `exp`, `nbf` and `iat`.
        public var leeway: Duration
        /// The longest token accepted, in bytes.
        public var maxTokenBytes: Int

        /// Creates a policy.
        public init(
            audience: String? = nil, issuer: String? = nil, leeway: Duration = .seconds(10), maxTokenBytes: Int = 8192
        ) {
            self.audience = audience
            self.issuer = issuer
            self.leeway = leeway
            self.maxTokenBytes = maxTokenBytes
        }
    }

    /// The keys in use: swapped whole when a key set is reloaded, so a verification sees the old set or the new.
    private struct KeyTable: Sendable {
        var collection: JWTKeyCollection
        var algorithms: [String: VerificationKey.Algorithm]
        var defaultAlgorithm: VerificationKey.Algorithm?
    }

    public let policy: Policy
    private let clock: @Sendable () -> Date
    private let table: Locked<KeyTable>

    /// A verifier for tokens signed with one of `keys`.
    ///
    /// - Parameters:
    ///   - keys: At least one; at most one without a `kid` (the default key).
    ///   - clock: Now, for `exp`, `nbf` and `iat`.
    public init(
        keys: [VerificationKey], policy: Policy = .init(), clock: @escaping @Sendable () -> Date = { Date() }
    ) async throws {
        self.policy = policy
        self.clock = clock
        self.table = Locked(try await Self.table(of: keys))
    }

    /// Replaces the keys (a reloaded JWKS document); verifications in flight finish with the keys they started with.
    public func replaceKeys(_ keys: [VerificationKey]) async throws {
        let table = try await Self.table(of: keys)
        self.table.withLock { $0 = table }
    }

    /// The key ids known now.
    public var keyIDs: Set<String> { self.table.withLock { Set($0.algorithms.keys) } }

    private static func table(of keys: [VerificationKey]) async throws -> KeyTable {
        guard !keys.isEmpty else { throw KeyError("no verification key") }
        let collection = JWTKeyCollection()
        var algorithms: [String: VerificationKey.Algorithm] = [:]
        var defaultAlgorithm: VerificationKey.Algorithm?
        for key in keys {
            if let kid = key.kid {
                guard algorithms.updateValue(key.algorithm, forKey: kid) == nil else {
                    throw KeyError("two keys with kid \(kid)")
                }
            } else {
                guard defaultAlgorithm == nil else { throw KeyError("more than one key without a kid") }
                defaultAlgorithm = key.algorithm
            }
            try await key.install(collection)
        }
        return KeyTable(collection: collection, algorithms: algorithms, defaultAlgorithm: defaultAlgorithm)
    }

    /// The identity `token` proves, or why it proves none.
    public func verify(_ token: String) async throws(TokenError) -> Identity {
        guard token.utf8.count <= self.policy.maxTokenBytes else {
            throw TokenError(.tooLarge, "a token is at most \(self.policy.maxTokenBytes) bytes")
        }
        let header: JWTHeader
        do {
            header = try DefaultJWTParser().parse(Array(token.utf8), as: ConnectionClaims.self).header
        } catch {
            throw TokenError(.malformed, "not a JWT with a JSON header and claims")
        }
        let table = self.table.withLock { $0 }
        // jwt-kit picks the key by kid, else the default one; the token must name that key's algorithm. A kid this
        // verifier does not have is refused when it has keys by kid (a JWKS): the default key (a secret beside the
        // JWKS) must not verify tokens meant for another key. With a default key alone, a kid chooses nothing.
        let expected: VerificationKey.Algorithm
        if let kid = header.kid, let algorithm = table.algorithms[kid] {
            expected = algorithm
        } else if let kid = header.kid, !table.algorithms.isEmpty {
            throw TokenError(.unknownKey, "no key with kid \(Self.quoted(kid))")
        } else if let algorithm = table.defaultAlgorithm {
            expected = algorithm
        } else {
            throw TokenError(
                .unknownKey, header.kid.map { "no key with kid \(Self.quoted($0))" } ?? "the token names no kid")
        }
        guard header.alg == expected.rawValue else {
            throw TokenError(
                .algorithmNotAllowed,
                "the key takes \(expected.rawValue) tokens, this one says \(Self.quoted(header.alg ?? "nothing"))")
        }
        let claims: ConnectionClaims
        do {
            claims = try await table.collection.verify(token, as: ConnectionClaims.self)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw TokenError(.badSignature, "the signature does not verify")
        } catch {
            throw TokenError(.malformed, "the token could not be verified")
        }
        return try self.identity(from: claims)
    }

    private func identity(from claims: ConnectionClaims) throws(TokenError) -> Identity {
        let now = self.clock()
        let leeway = TimeInterval(self.policy.leeway.components.seconds)
        if let exp = claims.exp?.value, now.timeIntervalSince(exp) > leeway {
            throw TokenError(.expired, "the token expired at \(Self.format(exp))")
        }
        if let nbf = claims.nbf?.value, nbf.timeIntervalSince(now) > leeway {
            throw TokenError(.notYetValid, "the token is valid from \(Self.format(nbf))")
        }
        if let iat = claims.iat?.value, iat.timeIntervalSince(now) > leeway {
            throw TokenError(.notYetValid, "the token was issued in the future (\(Self.format(iat)))")
        }
        if let audience = self.policy.audience, !(claims.aud?.value.contains(audience) ?? false) {
            throw TokenError(.wrongAudience, "the token's aud must include \(Self.quoted(audience))")
        }
        if let issuer = self.policy.issuer, claims.iss?.value != issuer {
            throw TokenError(.wrongIssuer, "the token's iss must be \(Self.quoted(issuer))")
        }
        guard let subject = claims.sub?.value, IdentityNames.isValidUserID(subject) else {
            throw TokenError(.invalidClaims, "sub must be a user id: 1 to 128 of A-Z a-z 0-9 - _ . @ |")
        }
        var name = subject
        if let claimed = claims.name {
            guard let valid = DisplayName.normalized(claimed) else {
                throw TokenError(.invalidClaims, "name must be 1 to 32 visible characters")
            }
            name = valid
        }
        let rooms = claims.rooms ?? []
        guard rooms.count <= 64 else { throw TokenError(.invalidClaims, "rooms lists at most 64 patterns") }
        var patterns: [ChannelPattern] = []
        for room in rooms {
            guard let pattern = ChannelPattern(room) else {
                throw TokenError(.invalidClaims, "each rooms pattern is 1 to 128 bytes")
            }
            patterns.append(pattern)
        }
        return Identity(userID: subject, name: name, rooms: patterns, expiresAt: claims.exp?.value)
    }

    /// A value from the token, quoted and cut short for a message.
    private static func quoted(_ value: String) -> String {
        "\"\(value.prefix(40).filter { !$0.isNewline })\""
    }

    private static func format(_ date: Date) -> String {
        "\(Int64(date.timeIntervalSince1970)) (seconds since 1970)"
    }
}
