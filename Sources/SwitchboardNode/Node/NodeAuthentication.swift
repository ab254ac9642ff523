import Logging
import SwitchboardAuth
import SwitchboardHTTPClient
import SwitchboardRooms

extension IdentitySettings {
    /// The verification keys these settings name, read (and fetched) now; none without a key.
    ///
    /// - Throws: ``NodeError`` for a key or file that cannot be used.
    func keys(client: HTTPClient) async throws(NodeError) -> [VerificationKey] {
        var keys: [VerificationKey] = []
        do {
            if let secret = self.jwtSecret {
                guard let algorithm = VerificationKey.Algorithm(rawValue: self.jwtAlgorithm),
                    self.jwtAlgorithm.hasPrefix("HS")
                else {
                    throw NodeError(
                        "jwt-algorithm must be HS256, HS384 or HS512, not \(self.jwtAlgorithm.debugDescription)")
                }
                keys.append(try .hmac(secret: secret, algorithm: algorithm))
            }
            if let path = self.jwtPublicKey { keys.append(try .publicKey(pem: try readKeyFile(path))) }
            if let path = self.jwksFile { keys += try VerificationKey.keySet(json: try readKeyFile(path)) }
            if let url = self.jwksURL {
                keys += try VerificationKey.keySet(json: try await JWKSFetcher(url: url, client: client).fetch())
            }
        } catch let error as NodeError {
            throw error
        } catch {
            throw NodeError("token keys: \(error)")
        }
        return keys
    }

    /// Who may connect: with a verifier when a key is configured.
    ///
    /// - Throws: ``NodeError`` for a key that cannot be used, or members-only rooms without a key.
    func authentication(client: HTTPClient) async throws(NodeError) -> ChatAuthentication {
        let keys = try await self.keys(client: client)
        guard !keys.isEmpty else {
            if !self.privateRooms.isEmpty {
                throw NodeError("private-room needs a token key (jwt-secret, jwt-public-key, jwks-file or jwks-url)")
            }
            return ChatAuthentication()
        }
        let policy = TokenVerifier.Policy(audience: self.jwtAudience, issuer: self.jwtIssuer)
        do {
            let verifier = try await TokenVerifier(keys: keys, policy: policy)
            return ChatAuthentication(
                verifier: verifier, allowsAnonymous: self.allowAnonymous, privateRooms: self.privateRooms)
        } catch {
            throw NodeError("token keys: \(error)")
        }
    }
}

extension ChatAuthentication {
    /// One line at start-up on who may connect (never a key).
    func describe(to logger: Logger) {
        guard let verifier = self.verifier else {
            // Debug: the default (the demo) says nothing more at start than where it listens.
            logger.debug("Tokens off: anyone may connect and choose a nickname (configure a key to require tokens)")
            return
        }
        logger.info(
            "Tokens \(self.allowsAnonymous ? "optional: anonymous sockets allowed" : "required")",
            metadata: [
                "keys": "\(verifier.keyIDs.isEmpty ? "default" : verifier.keyIDs.sorted().joined(separator: ","))",
                "private_rooms": "\(self.privateRooms.map(\.pattern).joined(separator: ","))",
            ])
    }
}
