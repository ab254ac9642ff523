import FoundationEssentials
import JWTKit

/// A key that connection tokens may be signed with, and the one algorithm it accepts: a token whose header names
/// another (`none`, or HS256 against an RSA public key used as an HMAC secret) is refused before any signature check.
public struct VerificationKey: Sendable {
    /// The JWS algorithms Switchboard accepts.
    public enum Algorithm: String, Sendable, CaseIterable {
        case hs256 = "HS256"
        case hs384 = "HS384"
        case hs512 = "HS512"
        case rs256 = "RS256"
        case es256 = "ES256"
        case edDSA = "EdDSA"
    }

    /// The algorithm tokens signed with this key must name.
    public let algorithm: Algorithm
    /// The key id tokens name in their header (`kid`); `nil` for the default key, used by tokens without one.
    public let kid: String?
    /// Adds the key to a collection.
    let install: @Sendable (JWTKeyCollection) async throws -> Void

    /// The shortest HMAC secret accepted for `algorithm`: as long as its hash (RFC 7518 § 3.2), 32, 48 or 64 bytes.
    public static func minimumSecretBytes(for algorithm: Algorithm) -> Int {
        switch algorithm {
        case .hs384: 48
        case .hs512: 64
        default: 32
        }
    }

    /// An HMAC secret (HS256, HS384 or HS512).
    public static func hmac(secret: String, algorithm: Algorithm = .hs256, kid: String? = nil) throws -> Self {
        let digest = try Self.digest(of: algorithm)
        guard secret.utf8.count >= Self.minimumSecretBytes(for: algorithm) else {
            throw KeyError(
                "an \(algorithm.rawValue) secret must be at least \(Self.minimumSecretBytes(for: algorithm)) bytes")
        }
        let key = HMACKey(from: secret)
        return Self(algorithm: algorithm, kid: kid) { await $0.add(hmac: key, digestAlgorithm: digest, kid: kid?.jwk) }
    }

    /// A public key in PEM: RSA (RS256), EC P-256 (ES256) or Ed25519 (EdDSA), told apart by what the PEM holds.
    public static func publicKey(pem: String, kid: String? = nil) throws -> Self {
        if let key = try? ES256PublicKey(pem: pem) {
            return Self(algorithm: .es256, kid: kid) { await $0.add(ecdsa: key, kid: kid?.jwk) }
        }
        if let key = try? EdDSA.PublicKey(pem: pem) {
            return Self(algorithm: .edDSA, kid: kid) { await $0.add(eddsa: key, kid: kid?.jwk) }
        }
        if let key = try? Insecure.RSA.PublicKey(pem: pem) {
            return Self(algorithm: .rs256, kid: kid) { await $0.add(rsa: key, digestAlgorithm: .sha256, kid: kid?.jwk) }
        }
        throw KeyError("not a PEM public key of RSA, EC P-256 or Ed25519 (a private key or certificate will not do)")
    }

    /// The keys of a JWKS document (RFC 7517). Each key must name its `kid` and its `alg` (RS256, ES256 or EdDSA):
    /// the algorithm comes from the key, never from a token.
    public static func keySet(json: String) throws -> [Self] {
        let set: JWKS
        do {
            set = try JSONDecoder().decode(JWKS.self, from: Data(json.utf8))
        } catch {
            throw KeyError("not a JWKS document: \(error)")
        }
        guard set.keys.count <= 64 else { throw KeyError("a JWKS document may hold at most 64 keys") }
        return try set.keys.map { jwk in
            guard let kid = jwk.keyIdentifier?.string, !kid.isEmpty else { throw KeyError("a JWKS key without kid") }
            guard let name = jwk.algorithm?.rawValue, let algorithm = Algorithm(rawValue: name),
                [.rs256, .es256, .edDSA].contains(algorithm)
            else {
                throw KeyError("JWKS key \(kid): alg must be RS256, ES256 or EdDSA")
            }
            return Self(algorithm: algorithm, kid: kid) { keys in
                // Making the verifier now refuses a key with missing or bad parameters when the set is loaded,
                // not token by token.
                do {
                    try await keys.add(jwk: jwk)
                    _ = try await keys.getKey(for: kid.jwk, alg: name)
                } catch {
                    throw KeyError("JWKS key \(kid): \(error)")
                }
            }
        }
    }
}

extension VerificationKey {
    /// The hash of an HMAC algorithm.
    static func digest(of algorithm: Algorithm) throws -> DigestAlgorithm {
        switch algorithm {
        case .hs256: .sha256
        case .hs384: .sha384
        case .hs512: .sha512
        default: throw KeyError("an HMAC secret signs HS256, HS384 or HS512, not \(algorithm.rawValue)")
        }
    }
}

/// A key that cannot be used; the message says why, without the key.
public struct KeyError: Error, Sendable, CustomStringConvertible {
    public var description: String

    public init(_ description: String) { self.description = description }
}

extension String {
    fileprivate var jwk: JWKIdentifier { JWKIdentifier(string: self) }
}
