import ArgumentParser
import Foundation
import SwitchboardAuth

/// `switchboard token`: prints a connection token signed with the configured key, for trying tokens out. An app's
/// backend issues its own (docs/SECURITY.md).
struct TokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a connection token for trying things out (development only: apps sign their own)."
    )

    @Option(help: "The user id (the token's sub).")
    var user: String

    @Option(help: "The name others see (default: the user id).")
    var name: String?

    @Option(help: "A members-only room pattern the user may join; repeatable.")
    var room: [String] = []

    @Option(help: "Seconds until the token expires (default 3600).")
    var ttl: Int = 3600

    @Option(help: "Sign with this PEM private key (EC P-256, Ed25519 or RSA) instead of an HMAC secret.")
    var privateKey: String?

    // Not --jwt-secret: the root command's options would take that name before this subcommand sees it.
    @Option(help: "The HMAC secret, as the server's --jwt-secret (env SWITCHBOARD_JWT_SECRET).")
    var secret: String?

    @Option(help: "HS256, HS384 or HS512 with the secret (env SWITCHBOARD_JWT_ALGORITHM; default HS256).")
    var algorithm: String?

    @Option(help: "The key id to put in the token's header (kid), as a JWKS document names the key.")
    var kid: String?

    @Option(help: "The aud claim, if the server checks one.")
    var audience: String?

    @Option(help: "The iss claim, if the server checks one.")
    var issuer: String?

    func validate() throws {
        guard IdentityNames.isValidUserID(self.user) else {
            throw ValidationError("--user: 1 to 128 of A-Z a-z 0-9 - _ . @ |")
        }
        guard (1...31_536_000).contains(self.ttl) else { throw ValidationError("--ttl must be 1 to 31536000 seconds") }
    }

    func run() async throws {
        let key: TokenIssuer.SigningKey
        let environment = ProcessInfo.processInfo.environment
        if let path = self.privateKey {
            do {
                key = .privateKey(pem: try String(contentsOfFile: path, encoding: .utf8))
            } catch {
                throw Launch.usageError(["cannot read \(path)"])
            }
        } else if let secret = self.secret ?? environment["SWITCHBOARD_JWT_SECRET"] {
            let name = (self.algorithm ?? environment["SWITCHBOARD_JWT_ALGORITHM"] ?? "HS256").uppercased()
            guard let algorithm = VerificationKey.Algorithm(rawValue: name) else {
                throw Launch.usageError(["--algorithm must be HS256, HS384 or HS512"])
            }
            key = .hmac(secret: secret, algorithm: algorithm)
        } else {
            throw Launch.usageError(["give --secret (or SWITCHBOARD_JWT_SECRET) or --private-key"])
        }
        var claims = TokenIssuer.Claims(
            userID: self.user, name: self.name, rooms: self.room.isEmpty ? nil : self.room,
            lifetime: .seconds(self.ttl))
        claims.audience = self.audience
        claims.issuer = self.issuer
        do {
            print(try await TokenIssuer.sign(claims, with: key, kid: self.kid))
        } catch {
            throw Launch.usageError(["\(error)"])
        }
    }
}
