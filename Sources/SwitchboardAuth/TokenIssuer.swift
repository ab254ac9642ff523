public import FoundationEssentials
import JWTKit

/// Signs connection tokens: what an app's backend does (see docs/SECURITY.md); Switchboard itself
/// uses it only for `switchboard token`, the development helper, and tests.
public enum TokenIssuer {
    /// A key to sign with.
    public enum SigningKey: Sendable {
        /// An HMAC secret (HS256, HS384 or HS512).
        case hmac(secret: String, algorithm: VerificationKey.Algorithm = .hs256)
        /// A private key in PEM: EC P-256 (ES256), Ed25519 (EdDSA) or RSA (RS256).
        case privateKey(pem: String)
    }

    /// The claims of a token.
    public struct Claims: Sendable {
        public var userID: String
        public var name: String?
        public var rooms: [String]?
        public var expiresAt: Date?
        public var notBefore: Date?
        public var issuedAt: Date?
        public var audience: String?
        public var issuer: String?

        /// Claims for `userID`, issued `now` and valid for `lifetime` (`nil`: no `exp`).
        public init(
            userID: String, name: String? = nil, rooms: [String]? = nil, lifetime: Duration? = .seconds(3600),
            now: Date = Date()
        ) {
            self.userID = userID
            self.name = name
            self.rooms = rooms
            self.issuedAt = now
            self.expiresAt = lifetime.map { now.addingTimeInterval(TimeInterval($0.components.seconds)) }
        }
    }

    /// A signed token (compact JWS) carrying `claims`, with `kid` in its header when given.
    public static func sign(_ claims: Claims, with key: SigningKey, kid: String? = nil) async throws -> String {
        let keys = JWTKeyCollection()
        let id = kid.map { JWKIdentifier(string: $0) }
        switch key {
        case .hmac(let secret, let algorithm):
            let digest = try VerificationKey.digest(of: algorithm)
            // jwt-kit asserts on a short key; refuse it as the verifier does.
            guard secret.utf8.count >= VerificationKey.minimumSecretBytes(for: algorithm) else {
                throw KeyError(
                    "an \(algorithm.rawValue) secret must be at least "
                        + "\(VerificationKey.minimumSecretBytes(for: algorithm)) bytes")
            }
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: digest, kid: id)
        case .privateKey(let pem):
            if let key = try? ES256PrivateKey(pem: pem) {
                await keys.add(ecdsa: key, kid: id)
            } else if let key = try? EdDSA.PrivateKey(pem: pem) {
                await keys.add(eddsa: key, kid: id)
            } else if let key = try? Insecure.RSA.PrivateKey(pem: pem) {
                await keys.add(rsa: key, digestAlgorithm: .sha256, kid: id)
            } else {
                throw KeyError("not a PEM private key of EC P-256, Ed25519 or RSA")
            }
        }
        var payload = ConnectionClaims()
        payload.sub = SubjectClaim(value: claims.userID)
        payload.name = claims.name
        payload.rooms = claims.rooms
        payload.exp = claims.expiresAt.map { ExpirationClaim(value: $0) }
        payload.nbf = claims.notBefore.map { NotBeforeClaim(value: $0) }
        payload.iat = claims.issuedAt.map { IssuedAtClaim(value: $0) }
        payload.aud = claims.audience.map { AudienceClaim(value: [$0]) }
        payload.iss = claims.issuer.map { IssuerClaim(value: $0) }
        return try await keys.sign(payload, kid: id)
    }
}
