public import NIOCore

/// Publish/subscribe by channel name: the seam between the app and the fan-out engine (in process, or Redis).
///
/// Every subscriber of a channel gets every message published to it after its subscription is established, in
/// publish order. Delivery is a callback on an event loop the subscriber chooses (a WebSocket subscribes on its own
/// loop, so delivery and sending share a thread), a callback on whatever thread the broker delivers on (for a
/// fan-out engine that distributes to many loops itself, with no hop in between), or an async sequence.
public protocol Broker: Sendable {
    /// Publishes `payload` to every subscriber of `channel`.
    ///
    /// - Throws: ``BrokerError`` when the message cannot be published (for example, Redis is unreachable).
    func publish(_ payload: ByteBuffer, to channel: String) async throws

    /// Publishes without suspending, from any thread (a socket's event loop, say). Messages published from one
    /// thread keep their order.
    ///
    /// - Parameter promise: Completes once the broker has accepted the message, or fails with a ``BrokerError``
    ///   or the broker's own error; `nil` to not be told.
    func publish(_ payload: ByteBuffer, to channel: String, promise: EventLoopPromise<Void>?)

    /// Publishes `payload` and tells how many receivers got it: subscriber connections (one per process) with
    /// Redis, subscriptions in process. A node that asks every node something (the server API's `info`, say) learns
    /// from it how many answers to wait for.
    ///
    /// - Returns: The count, or `nil` when the broker cannot tell (the default implementation).
    /// - Throws: As ``publish(_:to:)``.
    func publishCountingReceivers(_ payload: ByteBuffer, to channel: String) async throws -> Int?

    /// Subscribes to `channel`; `handler` runs on `eventLoop` for every event, until the subscription ends.
    ///
    /// - Returns: The subscription, once established: messages published after this returns are delivered.
    /// - Important: Keep the subscription: releasing it (or calling ``Subscription/cancel()``) unsubscribes.
    func subscribe(
        to channel: String,
        on eventLoop: any EventLoop,
        handler: @escaping @Sendable (BrokerEvent) -> Void
    ) async throws -> Subscription

    /// Subscribes to `channel`; `handler` runs for every event on the thread the broker delivers it on, without a
    /// hop: the publisher's thread (``LocalBroker``), or the loop of the process's subscriber connection (Redis).
    ///
    /// This is what a fan-out engine uses to hand each message to its sockets' event loops itself, so a message
    /// reaches them in one hop. Events of one channel arrive in publish order for messages published from one
    /// thread; handlers for messages published from different threads may run at the same time.
    ///
    /// - Returns: The subscription, once established: messages published after this returns are delivered.
    /// - Important: `handler` must be quick, thread-safe and must never block or wait: it runs inside the
    ///   publisher's call, or on the connection that reads every message of the process.
    func subscribeDirect(
        to channel: String,
        handler: @escaping @Sendable (BrokerEvent) -> Void
    ) async throws -> Subscription
}

extension Broker {
    /// Publishes, and cannot tell how many receivers got it.
    public func publishCountingReceivers(_ payload: ByteBuffer, to channel: String) async throws -> Int? {
        try await self.publish(payload, to: channel)
        return nil
    }
}

/// What a subscriber receives.
public enum BrokerEvent: Sendable, Equatable {
    /// A message published to the channel.
    case message(BrokerMessage)
    /// Messages may have been lost (the broker's connection to Redis dropped and came back): re-sync if it matters.
    case gap
}

/// A message and the channel it was published to.
public struct BrokerMessage: Sendable, Equatable {
    public var channel: String
    public var payload: ByteBuffer

    public init(channel: String, payload: ByteBuffer) {
        self.channel = channel
        self.payload = payload
    }
}

/// Why a broker operation failed.
public struct BrokerError: Error, Hashable, CustomStringConvertible {
    private let message: String

    /// An error with a message for logs and callers.
    public init(_ message: String) {
        self.message = message
    }

    public var description: String { self.message }
}
