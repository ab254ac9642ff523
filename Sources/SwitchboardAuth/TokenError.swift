/// Why a token was refused. The description names the reason and never contains the token.
public struct TokenError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable code, sent to clients and documented in PROTOCOL.md.
    public enum Code: String, Sendable {
        /// Not three base64url parts of JSON.
        case malformed = "token_malformed"
        /// Longer than the verifier's limit.
        case tooLarge = "token_too_large"
        /// Signed with an algorithm the configured key does not have (`none`, HS256 for an RSA key, ...).
        case algorithmNotAllowed = "token_algorithm_not_allowed"
        /// The `kid` names no configured key, or the token names none and there is no default key.
        case unknownKey = "token_unknown_key"
        /// The signature does not verify.
        case badSignature = "token_bad_signature"
        /// `exp` has passed (beyond the leeway).
        case expired = "token_expired"
        /// `nbf` or `iat` is in the future (beyond the leeway).
        case notYetValid = "token_not_yet_valid"
        /// `aud` does not include the configured audience.
        case wrongAudience = "token_wrong_audience"
        /// `iss` is not the configured issuer.
        case wrongIssuer = "token_wrong_issuer"
        /// `sub` is missing or not a valid user id; or another claim has the wrong shape.
        case invalidClaims = "token_invalid_claims"
    }

    /// What went wrong.
    public var code: Code
    /// A sentence for people; never contains the token.
    public var message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(self.code.rawValue): \(self.message)" }
}
