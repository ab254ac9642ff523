import Foundation
import JWTKit
import SwitchboardAuth
import SwitchboardLocks
import SwitchboardTesting
import Testing

private let secret = "a-test-secret-long-enough-for-HS512-which-needs-sixty-four-bytes!"

private func verifier(
    _ keys: [VerificationKey], policy: TokenVerifier.Policy = .init(), now: Date = Date()
) async throws -> TokenVerifier {
    try await TokenVerifier(keys: keys, policy: policy, clock: { now })
}

private func token(
    _ userID: String = "alice", key: TokenIssuer.SigningKey = .hmac(secret: secret), kid: String? = nil,
    now: Date = Date(), _ edit: (inout TokenIssuer.Claims) -> Void = { _ in }
) async throws -> String {
    var claims = TokenIssuer.Claims(userID: userID, name: "Alice", now: now)
    edit(&claims)
    return try await TokenIssuer.sign(claims, with: key, kid: kid)
}

/// `header.claims.signature` with `header` and `claims` as given (base64url, no padding).
private func rawToken(header: String, claims: String, signature: [UInt8] = []) -> String {
    func encode(_ bytes: [UInt8]) -> String {
        Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }
    return [encode(Array(header.utf8)), encode(Array(claims.utf8)), encode(signature)].joined(separator: ".")
}

private func expectRefused(
    _ token: String, by verifier: TokenVerifier, _ code: TokenError.Code,
    sourceLocation: SourceLocation = #_sourceLocation
) async {
    do {
        let identity = try await verifier.verify(token)
        Issue.record("accepted as \(identity.userID); expected \(code.rawValue)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        #expect(!error.description.contains(token), "errors never contain the token", sourceLocation: sourceLocation)
    }
}

@Suite("Connection tokens")
struct TokenVerifierTests {
    @Test(
        "Each algorithm verifies with its key: HS256, HS384, HS512, RS256, ES256, EdDSA",
        arguments: [
            ("HS256", TokenIssuer.SigningKey.hmac(secret: secret, algorithm: .hs256)),
            ("HS384", .hmac(secret: secret, algorithm: .hs384)),
            ("HS512", .hmac(secret: secret, algorithm: .hs512)),
            ("RS256", .privateKey(pem: TestKeys.rsaPrivate)),
            ("ES256", .privateKey(pem: TestKeys.ecPrivate)),
            ("EdDSA", .privateKey(pem: TestKeys.edPrivate)),
        ])
    func algorithms(name: String, signing: TokenIssuer.SigningKey) async throws {
        let key: VerificationKey
        switch name {
        case "RS256": key = try .publicKey(pem: TestKeys.rsaPublic)
        case "ES256": key = try .publicKey(pem: TestKeys.ecPublic)
        case "EdDSA": key = try .publicKey(pem: TestKeys.edPublic)
        default: key = try .hmac(secret: secret, algorithm: VerificationKey.Algorithm(rawValue: name)!)
        }
        #expect(key.algorithm.rawValue == name)
        let identity = try await verifier([key]).verify(try await token(key: signing) { $0.rooms = ["team-*"] })
        #expect(identity.userID == "alice")
        #expect(identity.name == "Alice")
        #expect(identity.mayJoin("team-red") && !identity.mayJoin("lobby"))
        #expect(identity.expiresAt != nil)
    }

    @Test("A forged signature, alg none, HS256 signed with the RSA public key, and another key's algorithm are refused")
    func forgeries() async throws {
        let hmac = try await verifier([try .hmac(secret: secret)])
        await expectRefused(
            try await token(key: .hmac(secret: "another-secret-of-at-least-32-bytes!")), by: hmac, .badSignature)
        let unsigned = rawToken(header: #"{"alg":"none","typ":"JWT"}"#, claims: #"{"sub":"alice"}"#)
        await expectRefused(unsigned, by: hmac, .algorithmNotAllowed)
        // The classic confusion: the RSA public key, which is public, used as an HMAC secret.
        let rsa = try await verifier([try .publicKey(pem: TestKeys.rsaPublic)])
        await expectRefused(
            try await token(key: .hmac(secret: TestKeys.rsaPublic)), by: rsa, .algorithmNotAllowed)
        await expectRefused(unsigned, by: rsa, .algorithmNotAllowed)
        // An ES256 token against an HS256 key, and the other way round.
        await expectRefused(try await token(key: .privateKey(pem: TestKeys.ecPrivate)), by: hmac, .algorithmNotAllowed)
        await expectRefused(try await token(), by: rsa, .algorithmNotAllowed)
        // A valid signature by a different EC key.
        let ec = try await verifier([try .publicKey(pem: TestKeys.ecPublic)])
        await expectRefused(try await token(key: .privateKey(pem: TestKeys.ec2Private)), by: ec, .badSignature)
    }

    @Test("exp, nbf and iat against the clock, with the leeway")
    func times() async throws {
        let now = Date(timeIntervalSince1970: 2_000_000_000)
        let v = try await verifier([try .hmac(secret: secret)], now: now)
        await expectRefused(try await token(now: now) { $0.expiresAt = now.addingTimeInterval(-11) }, by: v, .expired)
        _ = try await v.verify(try await token(now: now) { $0.expiresAt = now.addingTimeInterval(-9) })  // within 10 s
        await expectRefused(
            try await token(now: now) { $0.notBefore = now.addingTimeInterval(60) }, by: v, .notYetValid)
        await expectRefused(try await token(now: now) { $0.issuedAt = now.addingTimeInterval(60) }, by: v, .notYetValid)
        _ = try await v.verify(
            try await token(now: now) {
                $0.issuedAt = now.addingTimeInterval(-60)
                $0.expiresAt = now.addingTimeInterval(60)
            })
        // A token without exp never expires (as Centrifugo's); one with exp reports it.
        let forever = try await v.verify(try await token(now: now) { $0.expiresAt = nil })
        #expect(forever.expiresAt == nil)
    }

    @Test("aud and iss when configured; sub required and a valid user id; name checked")
    func claims() async throws {
        let v = try await verifier([try .hmac(secret: secret)], policy: .init(audience: "chat", issuer: "https://app"))
        await expectRefused(try await token { $0.issuer = "https://app" }, by: v, .wrongAudience)
        await expectRefused(
            try await token {
                $0.audience = "other"
                $0.issuer = "https://app"
            }, by: v, .wrongAudience)
        await expectRefused(
            try await token {
                $0.audience = "chat"
                $0.issuer = "https://evil"
            }, by: v, .wrongIssuer)
        let ok = try await v.verify(
            try await token {
                $0.audience = "chat"
                $0.issuer = "https://app"
            })
        #expect(ok.userID == "alice")
        let plain = try await verifier([try .hmac(secret: secret)])
        await expectRefused(try await token(""), by: plain, .invalidClaims)
        await expectRefused(try await token("alice bob"), by: plain, .invalidClaims)
        await expectRefused(try await token(String(repeating: "a", count: 129)), by: plain, .invalidClaims)
        await expectRefused(try await token { $0.name = "Al\u{202E}ice" }, by: plain, .invalidClaims)
        let keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        let noSub = try await keys.sign(NameOnly(name: "Nobody"))
        await expectRefused(noSub, by: plain, .invalidClaims)
    }

    @Test("Size and shape: 16 KB and garbage are refused before any signature check")
    func shape() async throws {
        let v = try await verifier([try .hmac(secret: secret)])
        await expectRefused(String(repeating: "a", count: 16 * 1024), by: v, .tooLarge)
        await expectRefused(try await token { $0.name = String(repeating: "x", count: 8000) }, by: v, .tooLarge)
        for garbage in ["", "garbage", "a.b.c", "a.b", "....", "eyJ9.eyJ9.", "\u{0}\u{1}.x.y"] {
            await expectRefused(garbage, by: v, .malformed)
        }
    }

    @Test("Keys by kid; an unknown kid with no default key is refused; secrets as long as their hash")
    func kids() async throws {
        let v = try await verifier([
            try .hmac(secret: secret, kid: "h"), try .publicKey(pem: TestKeys.ecPublic, kid: "e"),
        ])
        #expect(try await v.verify(try await token(kid: "h")).userID == "alice")
        #expect(
            try await v.verify(try await token(key: .privateKey(pem: TestKeys.ecPrivate), kid: "e")).userID == "alice")
        await expectRefused(try await token(kid: "e"), by: v, .algorithmNotAllowed)
        await expectRefused(try await token(kid: "nope"), by: v, .unknownKey)
        await expectRefused(try await token(), by: v, .unknownKey)
        #expect(throws: KeyError.self) { try VerificationKey.hmac(secret: "short") }
        #expect(throws: KeyError.self) {
            try VerificationKey.hmac(secret: String(secret.prefix(40)), algorithm: .hs384)
        }
        #expect(throws: KeyError.self) { try VerificationKey.publicKey(pem: TestKeys.ecPrivate) }
        #expect(throws: KeyError.self) { try VerificationKey.publicKey(pem: "garbage") }
    }

    @Test("A JWKS beside a secret: a token naming a kid the JWKS lacks is refused, not verified with the secret")
    func unknownKidWithDefault() async throws {
        let v = try await verifier([try .hmac(secret: secret), try .publicKey(pem: TestKeys.ecPublic, kid: "e")])
        #expect(try await v.verify(try await token()).userID == "alice", "no kid: the default key")
        await expectRefused(try await token(kid: "forged"), by: v, .unknownKey)
        // A default key alone: a kid chooses among nothing, and the token is verified with it.
        let alone = try await verifier([try .hmac(secret: secret)])
        #expect(try await alone.verify(try await token(kid: "any")).userID == "alice")
    }

    @Test("JWKS rotation: a new key is published beside the old; tokens of both verify, the old ones until their exp")
    func rotation() async throws {
        let clock = MutableClock(Date(timeIntervalSince1970: 2_000_000_000))
        let v = try await TokenVerifier(
            keys: try VerificationKey.keySet(json: #"{"keys":[\#(TestKeys.ecJWK)]}"#), clock: { clock.now })
        let old = try await token(key: .privateKey(pem: TestKeys.ecPrivate), kid: "k1") {
            $0.issuedAt = clock.now
            $0.expiresAt = clock.now.addingTimeInterval(600)
        }
        #expect(try await v.verify(old).userID == "alice")
        let new = try await token(key: .privateKey(pem: TestKeys.ec2Private), kid: "k2") {
            $0.issuedAt = clock.now
            $0.expiresAt = clock.now.addingTimeInterval(3600)
        }
        await expectRefused(new, by: v, .unknownKey)
        try await v.replaceKeys(try VerificationKey.keySet(json: #"{"keys":[\#(TestKeys.ecJWK),\#(TestKeys.ec2JWK)]}"#))
        #expect(v.keyIDs == ["k1", "k2"])
        #expect(try await v.verify(new).userID == "alice")
        #expect(try await v.verify(old).userID == "alice")
        clock.advance(by: 700)
        await expectRefused(old, by: v, .expired)
        #expect(try await v.verify(new).userID == "alice")
        // A key set must say each key's algorithm: it is never taken from a token.
        let noAlg = TestKeys.ecJWK.replacingOccurrences(of: #""alg": "ES256", "#, with: "")
        #expect(throws: KeyError.self) { try VerificationKey.keySet(json: #"{"keys":[\#(noAlg)]}"#) }
        let badKey = TestKeys.ecJWK.replacingOccurrences(of: #""x": ""#, with: #""x": "AAAA"#)
        await #expect(throws: KeyError.self) {
            try await TokenVerifier(keys: try VerificationKey.keySet(json: #"{"keys":[\#(badKey)]}"#))
        }
        #expect(throws: KeyError.self) { try VerificationKey.keySet(json: "not json") }
    }
}

/// A clock a test moves.
private final class MutableClock: Sendable {
    private let seconds: Locked<TimeInterval>
    init(_ start: Date) { self.seconds = Locked(start.timeIntervalSince1970) }
    var now: Date { Date(timeIntervalSince1970: self.seconds.withLock { $0 }) }
    func advance(by interval: TimeInterval) { self.seconds.withLock { $0 += interval } }
}

/// Claims without `sub`.
private struct NameOnly: JWTPayload {
    var name: String
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// The README's example of issuing a token in a backend with jwt-kit ("Securing Switchboard"), word for word.
private struct ConnectionToken: JWTPayload {
    var sub: SubjectClaim  // the user id
    var name: String  // what others see
    var rooms: [String]  // members-only rooms this user may join ("team-*")
    var exp: ExpirationClaim
    func verify(using algorithm: some JWTAlgorithm) throws { try exp.verifyNotExpired() }
}

@Test("The README's backend example makes a token Switchboard accepts")
func readmeExample() async throws {
    let keys = await JWTKeyCollection().add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
    let token = try await keys.sign(
        ConnectionToken(sub: "42", name: "Alice", rooms: ["team-red"], exp: .init(value: .now + 3600)))
    let identity = try await TokenVerifier(keys: [try .hmac(secret: secret)]).verify(token)
    #expect(identity.userID == "42" && identity.name == "Alice" && identity.mayJoin("team-red"))
}
