import HTTPTypes
import Logging
import NIOCore
import Switchboard
import SwitchboardAuth
import SwitchboardLocks
import SwitchboardTopics
import SwitchboardWebSocket

/// `POST /publish/{channel}`: server-side notifications to every subscriber of a channel on every node.
///
/// A request names a key (`Authorization: Bearer <secret>`): `--publish-token` is a key for every channel,
/// `--publish-key name:secret:patterns` one for the channels its patterns match. Room channels (`room:*`) take
/// messages only through `/ws`, where they get ids and history: a key cannot forge them.
final class PublishEndpoint: Sendable {
    let topics: Topics
    let configuration: ChatConfiguration
    let logger: Logger
    private let counters: ChatCounters
    private let keys: KeyRing

    init(topics: Topics, configuration: ChatConfiguration, counters: ChatCounters, logger: Logger) {
        self.topics = topics
        self.counters = counters
        self.configuration = configuration
        self.logger = logger
        self.keys = KeyRing(configuration)
    }

    func respond(to request: Request) async throws -> Response {
        guard !self.keys.keys.isEmpty else {
            throw HTTPError(.notFound, "the publish API is off: start the server with --publish-token or --publish-key")
        }
        let key: ApiKey
        switch ChannelAccess.token(of: request).map(self.keys.check) ?? .unknown {
        case .unknown:
            throw HTTPError(
                .unauthorized, "a valid Authorization: Bearer <key> is required",
                headers: [.wwwAuthenticate: "Bearer"])
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
        guard ChannelName.isValid(channel) else {
            throw HTTPError(.badRequest, "invalid channel name: 1 to 128 of A-Z a-z 0-9 - _ . :")
        }
        guard !channel.hasPrefix("room:") else {
            throw HTTPError(.forbidden, "room channels take messages through /ws (they need ids and history)")
        }
        guard !ChannelName.isReserved(channel) else {
            throw HTTPError(.forbidden, "switchboard: channels are the nodes' own")
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
            self.logger.warning("Publish failed", metadata: ["channel": "\(channel)", "error": "\(error)"])
            throw HTTPError(.serviceUnavailable, "the message broker is unavailable: \(error)")
        }
        return Response(status: .noContent)
    }
}
