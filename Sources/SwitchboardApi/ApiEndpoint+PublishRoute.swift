import HTTPTypes
import Logging
import NIOCore
package import Switchboard
import SwitchboardAuth
import SwitchboardRooms
import SwitchboardTopics
import SwitchboardWebSocket

/// `POST /publish/{channel}`: server-side notifications to every subscriber of a channel on every node, with the
/// body as the message. The server API's simplest route, on its key ring: a key has one bucket whichever endpoint
/// it uses.
///
/// A request names a key (`Authorization: Bearer <secret>`): `--publish-token` is a key for every channel,
/// `--publish-key name:secret:patterns` one for the channels its patterns match, an `--api-key` with `publish` the
/// channels of its patterns. Room channels (`room:*`) take messages only through `/ws`, where they get ids and
/// history: a key cannot forge them.
extension ApiEndpoint {
    /// Answers `POST /publish/{channel}` (the channel in `request.parameters["channel"]`): 204 once published.
    package func publishRoute(_ request: Request) async throws -> Response {
        guard !self.keys.keys.isEmpty else {
            throw HTTPError(.notFound, "the publish API is off: start the server with --publish-token or --publish-key")
        }
        let key: ApiKey
        switch self.keys.check(request.bearerToken, from: request.remoteAddress?.ipAddress) {
        case .unknown:
            throw HTTPError(
                .unauthorized, "a valid Authorization: Bearer <key> is required",
                headers: [.wwwAuthenticate: "Bearer"])
        case .throttled(let seconds):
            self.counters.count(.rateLimited)
            throw HTTPError(
                .tooManyRequests, "too many wrong keys from your address; try again later",
                headers: [.retryAfter: String(seconds)])
        case .overRate(let over, let seconds):
            self.counters.count(.rateLimited)
            throw HTTPError(
                .tooManyRequests, "the key \(over.name) is over its rate (\(over.rate))",
                headers: [.retryAfter: String(seconds)])
        case .accepted(let accepted):
            guard accepted.operations.contains(.publish) else {
                throw HTTPError(.forbidden, "the key \(accepted.name) may not publish")
            }
            key = accepted
        }
        let channel = request.parameters["channel"] ?? ""
        do {
            try Self.checkPublishable(channel)
        } catch let error as ApiError {
            throw HTTPError(error.status, error.message)
        }
        guard key.covers(channel) else {
            throw HTTPError(.forbidden, "the key \(key.name) may not publish to \(channel)")
        }
        // collect(upTo:) answers 413 for a larger body.
        let body = try await request.body.collect(upTo: self.configuration.maxPublishSize)
        guard body.readableBytes > 0 else { throw HTTPError(.badRequest, "the message is empty") }
        guard WebSocketMessage.text(validating: body) != nil else {
            throw HTTPError(.unsupportedMediaType, "the message must be UTF-8 text or JSON")
        }
        do {
            try await self.topics.publish(body, to: channel)
        } catch {
            self.counters.count(.publishFailed)
            self.logger.warning("Publish failed", metadata: ["channel": "\(channel)", "error": "\(error)"])
            throw HTTPError(.serviceUnavailable, "the message broker is unavailable: \(error)")
        }
        return Response(status: .noContent)
    }
}

extension Request {
    /// The bearer token of `Authorization`, else of an offered `bearer.<token>` subprotocol (``BearerToken``).
    package var bearerToken: String? {
        BearerToken.of(
            authorization: self.headers[.authorization], subprotocols: self.headers[.secWebSocketProtocol])
    }
}
