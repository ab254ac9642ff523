import Synchronization

/// Counts what the limits and timers of the sockets that share it did; for metrics. Give one to the
/// ``WebSocketConfiguration`` of the sockets it should count (each is one relaxed atomic increment, when it happens).
public final class WebSocketCounters: Sendable {
    private let slowConsumersClosed = Atomic<Int>(0)
    private let messagesDroppedForSlowConsumers = Atomic<Int>(0)
    private let protocolViolations = Atomic<Int>(0)
    private let keepaliveTimeouts = Atomic<Int>(0)
    private let idleTimeouts = Atomic<Int>(0)

    /// Creates counters at zero.
    public init() {}

    /// What the counters say now.
    public struct Snapshot: Sendable, Hashable {
        /// Sockets closed because their outbound queue passed ``WebSocketConfiguration/maxQueuedBytes``.
        public var slowConsumersClosed: Int
        /// Messages not sent to a slow consumer (policy ``WebSocketConfiguration/SlowConsumerPolicy/dropMessages``).
        public var messagesDroppedForSlowConsumers: Int
        /// Sockets failed for a protocol violation or a limit (1002, 1007, 1009 …).
        public var protocolViolations: Int
        /// Sockets closed because a ping went unanswered for ``WebSocketConfiguration/pongTimeout``.
        public var keepaliveTimeouts: Int
        /// Sockets closed after ``WebSocketConfiguration/idleTimeout`` without a frame.
        public var idleTimeouts: Int
    }

    /// What the counters say now.
    public var snapshot: Snapshot {
        Snapshot(
            slowConsumersClosed: self.slowConsumersClosed.load(ordering: .relaxed),
            messagesDroppedForSlowConsumers: self.messagesDroppedForSlowConsumers.load(ordering: .relaxed),
            protocolViolations: self.protocolViolations.load(ordering: .relaxed),
            keepaliveTimeouts: self.keepaliveTimeouts.load(ordering: .relaxed),
            idleTimeouts: self.idleTimeouts.load(ordering: .relaxed)
        )
    }

    func slowConsumerClosed() { self.slowConsumersClosed.wrappingAdd(1, ordering: .relaxed) }
    func messageDroppedForSlowConsumer() { self.messagesDroppedForSlowConsumers.wrappingAdd(1, ordering: .relaxed) }
    func protocolViolation() { self.protocolViolations.wrappingAdd(1, ordering: .relaxed) }
    func keepaliveTimedOut() { self.keepaliveTimeouts.wrappingAdd(1, ordering: .relaxed) }
    func idleTimedOut() { self.idleTimeouts.wrappingAdd(1, ordering: .relaxed) }
}
