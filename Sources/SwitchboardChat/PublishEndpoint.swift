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
    private let keys: [PublishKey]
    /// Each key's request bucket, by index in `keys`.
    private let buckets: Locked<[TokenBucket]>

    init(topics: Topics, configuration: ChatConfiguration, counters: ChatCounters, logger: Logger) {
        self.topics = topics
        self.counters = counters
        self.configuration = configuration
        self.logger = logger
        var keys = configuration.publishKeys
        if let token = configuration.publishToken {
            keys.append(PublishKey(name: "publish-token", secret: token, channels: [ChannelPattern("*")!]))
        }
        self.keys = keys
        let now = NIODeadline.now().uptimeNanoseconds
        self.buckets = Locked(keys.map { TokenBucket($0.rate, now: now) })
    }

    func respond(to request: Request) async throws -> Response {
        guard !self.keys.isEmpty else {
            throw HTTPError(.notFound, "the publish API is off: start the server with --publish-token or --publish-key")
        }
        guard let presented = ChannelAccess.token(of: request), let index = self.key(matching: presented) else {
            throw HTTPError(
                .unauthorized, "a valid Authorization: Bearer <key> is required",
                headers: [.wwwAuthenticate: "Bearer"])
        }
        let key = self.keys[index]
        let channel = request.parameters["channel"] ?? ""
        guard ChannelName.isValid(channel) else {
            throw HTTPError(.badRequest, "invalid channel name: 1 to 128 of A-Z a-z 0-9 - _ . :")
        }
        guard !channel.hasPrefix("room:") else {
            throw HTTPError(.forbidden, "room channels take messages through /ws (they need ids and history)")
        }
        guard key.channels.contains(where: { $0.matches(channel) }) else {
            throw HTTPError(.forbidden, "the key \(key.name) may not publish to \(channel)")
        }
        let now = NIODeadline.now().uptimeNanoseconds
        if let wait = self.buckets.withLock({ $0[index].take(now: now) }) {
            self.counters.count(.rateLimited)
            let seconds = max(1, Int((wait + 999_999_999) / 1_000_000_000))
            throw HTTPError(
                .tooManyRequests, "the key \(key.name) is over its rate (\(key.rate))",
                headers: [.retryAfter: String(seconds)])
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

    /// The index of the key whose secret is `presented`; every key is compared in full, so response times do not
    /// reveal which or how much matched.
    private func key(matching presented: String) -> Int? {
        var found: Int?
        for (index, key) in self.keys.enumerated() where Self.constantTimeEqual(presented, key.secret) {
            found = found ?? index
        }
        return found
    }

    /// Compares without stopping at the first difference.
    private static func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8)
        let b = Array(rhs.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
