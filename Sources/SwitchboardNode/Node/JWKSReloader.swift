import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import SwitchboardAuth
import SwitchboardHTTPClient

/// Reads a JWKS document again every `interval` (a file, or a URL) and, when it changed, replaces the verifier's
/// keys: an identity provider rotating its keys publishes the new one beside the old, and tokens of both verify
/// until the old is removed. A document that cannot be read or parsed keeps the keys in use and logs why.
struct JWKSReloader: Service {
    /// Where the document comes from, for logs.
    let source: String
    let read: @Sendable () async throws -> String
    let verifier: TokenVerifier
    let logger: Logger
    let interval: Duration

    static func file(_ path: String, verifier: TokenVerifier, logger: Logger) -> Self {
        Self(
            source: path, read: { try readKeyFile(path) }, verifier: verifier, logger: logger,
            interval: .seconds(60))
    }

    static func url(
        _ url: String, every interval: Duration, client: HTTPClient, verifier: TokenVerifier, logger: Logger
    ) -> Self {
        let fetcher = JWKSFetcher(url: url, client: client)
        return Self(
            source: url, read: { try await fetcher.fetch() }, verifier: verifier, logger: logger, interval: interval)
    }

    func run() async throws {
        // Ends at once on graceful shutdown (the sleep is cancelled), so it never holds shutdown up.
        await cancelWhenGracefulShutdown { await self.reloadEveryInterval() }
    }

    private func reloadEveryInterval() async {
        var last = try? await self.read()
        while !Task.isCancelled {
            do { try await Task.sleep(for: self.interval) } catch { return }
            do {
                let text = try await self.read()
                guard text != last else { continue }
                try await self.verifier.replaceKeys(try VerificationKey.keySet(json: text))
                last = text
                self.logger.notice(
                    "Token keys reloaded",
                    metadata: ["jwks": "\(self.source)", "kids": "\(self.verifier.keyIDs.sorted())"])
            } catch {
                self.logger.warning(
                    "Token keys not reloaded; the previous ones stay in use",
                    metadata: ["jwks": "\(self.source)", "error": "\(error)"])
            }
        }
    }
}

/// Fetches a JWKS document over HTTP(S), with the node's HTTP client: at most 1 MiB, within 10 s, status 200.
struct JWKSFetcher: Sendable {
    let url: String
    let client: HTTPClient

    func fetch() async throws -> String {
        guard let url = OutboundURL(self.url) else {
            throw KeyError("--jwks-url must be an http or https URL, not \(self.url.debugDescription)")
        }
        var headers = HTTPHeaders()
        headers.add(name: "Accept", value: "application/json")
        let response: HTTPClient.Response
        do {
            response = try await self.client.send(.GET, url, headers: headers, deadline: .seconds(10))
        } catch {
            throw KeyError("fetching \(self.url): \(error)")
        }
        guard response.status == 200 else { throw KeyError("fetching \(self.url): HTTP status \(response.status)") }
        guard response.body.readableBytes <= 1 << 20 else { throw KeyError("\(self.url): more than 1 MiB") }
        guard let text = String(validating: response.body.readableBytesView, as: UTF8.self) else {
            throw KeyError("\(self.url): not UTF-8")
        }
        return text
    }
}
