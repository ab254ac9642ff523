import Foundation
import Logging
import ServiceLifecycle
import SwitchboardAuth
import SwitchboardChat

extension Serve {
    /// One line at start-up on who may connect (never a key).
    static func describe(_ auth: ChatAuthentication, logger: Logger) {
        guard let verifier = auth.verifier else {
            logger.info("Tokens off: anyone may connect and choose a nickname (configure a key to require tokens)")
            return
        }
        logger.info(
            "Tokens \(auth.allowsAnonymous ? "optional: anonymous sockets allowed" : "required")",
            metadata: [
                "keys": "\(verifier.keyIDs.isEmpty ? "default" : verifier.keyIDs.sorted().joined(separator: ","))",
                "private_rooms": "\(auth.privateRooms.map(\.pattern).joined(separator: ","))",
            ])
    }
}

/// Reads a JWKS file again every minute and, when it changed, replaces the verifier's keys: an identity provider
/// rotating its keys publishes the new one beside the old, and tokens of both verify until the old is removed.
/// A file that cannot be read or parsed keeps the keys in use and logs why.
struct JWKSFileReloader: Service {
    let path: String
    let verifier: TokenVerifier
    let logger: Logger
    var interval: Duration = .seconds(60)

    func run() async throws {
        // Ends at once on graceful shutdown (the sleep is cancelled), so it never holds shutdown up.
        await cancelWhenGracefulShutdown { await self.reloadEveryInterval() }
    }

    private func reloadEveryInterval() async {
        var last = try? AuthOptions.read(self.path)
        while !Task.isCancelled {
            do { try await Task.sleep(for: self.interval) } catch { return }
            do {
                let text = try AuthOptions.read(self.path)
                guard text != last else { continue }
                try await self.verifier.replaceKeys(try VerificationKey.keySet(json: text))
                last = text
                self.logger.notice(
                    "Token keys reloaded",
                    metadata: ["jwks": "\(self.path)", "kids": "\(self.verifier.keyIDs.sorted())"])
            } catch {
                self.logger.warning(
                    "Token keys not reloaded; the previous ones stay in use",
                    metadata: ["jwks": "\(self.path)", "error": "\(error)"])
            }
        }
    }
}
