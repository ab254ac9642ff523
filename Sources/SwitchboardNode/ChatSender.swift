import Logging
import NIOCore
import SwitchboardAuth
import SwitchboardRooms
import SwitchboardTopics
import SwitchboardWebSocket

/// One `/chat` socket's sending side: the seed's protocol (each text message to everyone on the chat channel) under
/// the `say` limits of `/ws` (messages and bytes per socket, per user, per address).
///
/// The seed's protocol has no error message: a message over a limit is dropped (counted as `rate_limit` in the
/// metrics), and a socket that goes on past ``ChatRateLimits/maxRefusals`` dropped messages in a row is closed with
/// 1008 and read no further.
///
/// - Important: Lives on its socket's event loop: ``receive(_:on:)`` is called there.
final class ChatSender {
    private let topics: Topics
    private let channel: String
    private let counters: ChatCounters
    private let logger: Logger
    private let registry: ConnectionRegistry
    /// The client's places in the registry (its user and address buckets), when counted.
    private let lease: ClientLease?
    private let maxRefusals: Int
    private var messages: TokenBucket
    private var bytes: TokenBucket
    /// Messages dropped since the last one that went out.
    private var refusals = 0

    init(
        topics: Topics, channel: String, limits: ChatRateLimits, registry: ConnectionRegistry, lease: ClientLease?,
        counters: ChatCounters, logger: Logger
    ) {
        let now = NIODeadline.now().uptimeNanoseconds
        self.topics = topics
        self.channel = channel
        self.counters = counters
        self.logger = logger
        self.registry = registry
        self.lease = lease
        self.maxRefusals = limits.maxRefusals
        self.messages = TokenBucket(limits.sayMessages, now: now)
        self.bytes = TokenBucket(limits.sayBytes, now: now)
    }

    /// A message from the client: published, or dropped over a limit.
    func receive(_ message: WebSocketMessage, on socket: WebSocket) {
        guard message.kind == .text else {
            socket.close(code: .unsupportedData, reason: "text messages only")
            return
        }
        guard self.allows(message.data.readableBytes) else {
            self.counters.count(.rateLimited)
            self.refusals += 1
            if self.refusals > self.maxRefusals {
                self.counters.count(.refusalsClosed)
                self.logger.info(
                    "A /chat socket went on sending past its limits and was closed",
                    metadata: ["address": "\(self.lease?.address ?? "")", "user": "\(self.lease?.user ?? "")"])
                socket.drop(code: .policyViolation, reason: "too many messages; slow down")
            }
            return
        }
        self.refusals = 0
        let promise = socket.eventLoop.makePromise(of: Void.self)
        let counters = self.counters
        let logger = self.logger
        promise.futureResult.whenFailure { error in
            // The message must not vanish without a word: the sender's socket is closed with 1013 (try again later).
            // The broker logs its outage itself.
            logger.debug("Publishing a chat message failed", metadata: ["error": "\(error)"])
            counters.count(.publishFailed)
            socket.close(code: .tryAgainLater, reason: "the message could not be published; try again")
        }
        self.topics.publish(message.data, to: self.channel, promise: promise)
    }

    /// Takes the message from every bucket it is counted in; `false` if one is empty (what the earlier ones gave is
    /// not returned: the client was over a limit, and pays for asking).
    private func allows(_ size: Int) -> Bool {
        let now = NIODeadline.now().uptimeNanoseconds
        guard self.messages.take(now: now) == nil, self.bytes.take(Double(size), now: now) == nil else { return false }
        guard let lease else { return true }
        if let user = lease.user, self.registry.takeMessage(of: user, now: now) != nil { return false }
        if let address = lease.address, self.registry.takeMessage(ofAddress: address, now: now) != nil { return false }
        return true
    }
}
