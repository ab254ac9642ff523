import FoundationEssentials
import JWTKit

/// The claims Switchboard reads from a connection token; others are ignored.
struct ConnectionClaims: JWTPayload {
    var sub: SubjectClaim?
    var exp: ExpirationClaim?
    var nbf: NotBeforeClaim?
    var iat: IssuedAtClaim?
    var aud: AudienceClaim?
    var iss: IssuerClaim?
    /// The name others see.
    var name: String?
    /// Patterns of members-only rooms the user may join.
    var rooms: [String]?

    /// Time, audience and issuer are checked by ``TokenVerifier`` with its clock, leeway and settings.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
