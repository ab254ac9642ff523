import SwitchboardLocks
import Synchronization

/// Counts what the sockets that share it did: messages and bytes each way, closes by code, and what their limits and
/// timers did; for metrics. Give one to the ``WebSocketConfiguration`` of the sockets it should count (each count is
/// one relaxed atomic add, when it happens; a fan-out's deliveries are counted by the engine per batch, not here).
public final class WebSocketCounters: Sendable {
    private let slowConsumersClosed = Atomic<Int>(0)
    private let messagesDroppedForSlowConsumers = Atomic<Int>(0)
    private let protocolViolations = Atomic<Int>(0)
    private let keepaliveTimeouts = Atomic<Int>(0)
    private let idleTimeouts = Atomic<Int>(0)
    private let messagesReceived = Atomic<Int>(0)
    private let bytesReceived = Atomic<Int>(0)
    private let messagesSent = Atomic<Int>(0)
    private let bytesSent = Atomic<Int>(0)
    private let opened = Atomic<Int>(0)
    private let finished = Atomic<Int>(0)
    /// Closes by code: one slot per code in ``countedCloseCodes``, then one for every other code. A peer chooses its
    /// close code, so the codes counted one by one are a fixed set and a metric never gets a label per peer's whim.
    /// A lock, not atomics: a close happens once per socket, not per message.
    private let closes: Locked<[Int]>

    /// The close codes counted one by one (RFC 6455's 1000–1015, and 4000–4015 for applications); any other code is
    /// counted under `nil` in ``Snapshot/closesByCode``.
    public static let countedCloseCodes: [UInt16] = Array(1000...1015) + Array(4000...4015)

    /// Creates counters at zero.
    public init() {
        self.closes = Locked(Array(repeating: 0, count: Self.countedCloseCodes.count + 1))
    }

    /// What the counters say now.
    public struct Snapshot: Sendable, Hashable {
        /// Sockets open now.
        public var open: Int
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
        /// Whole messages received and handed to the app.
        public var messagesReceived: Int
        /// Their payload bytes (after decompression).
        public var bytesReceived: Int
        /// Messages the app sent with `send` (not the fan-out's deliveries, which the engine counts).
        public var messagesSent: Int
        /// Their payload bytes (before compression).
        public var bytesSent: Int
        /// Sockets closed, by the code they ended with (`nil`: a code not in ``WebSocketCounters/countedCloseCodes``);
        /// codes never seen are absent.
        public var closesByCode: [UInt16?: Int]
    }

    /// What the counters say now.
    public var snapshot: Snapshot {
        var closes: [UInt16?: Int] = [:]
        for (index, count) in self.closes.withLock({ $0 }).enumerated() {
            guard count > 0 else { continue }
            closes[index < Self.countedCloseCodes.count ? Self.countedCloseCodes[index] : nil] = count
        }
        // Finished first: a socket that closes between the two loads is then never counted as open below zero.
        let finished = self.finished.load(ordering: .relaxed)
        return Snapshot(
            open: max(0, self.opened.load(ordering: .relaxed) - finished),
            slowConsumersClosed: self.slowConsumersClosed.load(ordering: .relaxed),
            messagesDroppedForSlowConsumers: self.messagesDroppedForSlowConsumers.load(ordering: .relaxed),
            protocolViolations: self.protocolViolations.load(ordering: .relaxed),
            keepaliveTimeouts: self.keepaliveTimeouts.load(ordering: .relaxed),
            idleTimeouts: self.idleTimeouts.load(ordering: .relaxed),
            messagesReceived: self.messagesReceived.load(ordering: .relaxed),
            bytesReceived: self.bytesReceived.load(ordering: .relaxed),
            messagesSent: self.messagesSent.load(ordering: .relaxed),
            bytesSent: self.bytesSent.load(ordering: .relaxed),
            closesByCode: closes
        )
    }

    func socketOpened() { self.opened.wrappingAdd(1, ordering: .relaxed) }
    func slowConsumerClosed() { self.slowConsumersClosed.wrappingAdd(1, ordering: .relaxed) }
    func messageDroppedForSlowConsumer() { self.messagesDroppedForSlowConsumers.wrappingAdd(1, ordering: .relaxed) }
    func protocolViolation() { self.protocolViolations.wrappingAdd(1, ordering: .relaxed) }
    func keepaliveTimedOut() { self.keepaliveTimeouts.wrappingAdd(1, ordering: .relaxed) }
    func idleTimedOut() { self.idleTimeouts.wrappingAdd(1, ordering: .relaxed) }

    func received(bytes: Int) {
        self.messagesReceived.wrappingAdd(1, ordering: .relaxed)
        self.bytesReceived.wrappingAdd(bytes, ordering: .relaxed)
    }

    func sent(bytes: Int) {
        self.messagesSent.wrappingAdd(1, ordering: .relaxed)
        self.bytesSent.wrappingAdd(bytes, ordering: .relaxed)
    }

    func closed(code: WebSocketCloseCode) {
        let raw = code.rawValue
        let index: Int
        switch raw {
        case 1000...1015: index = Int(raw - 1000)
        case 4000...4015: index = 16 + Int(raw - 4000)
        default: index = Self.countedCloseCodes.count
        }
        self.closes.withLock { $0[index] += 1 }
        self.finished.wrappingAdd(1, ordering: .relaxed)
    }
}

extension WebSocketCounters.Snapshot {
    /// All zero.
    public static var zero: Self {
        Self(
            open: 0, slowConsumersClosed: 0, messagesDroppedForSlowConsumers: 0, protocolViolations: 0,
            keepaliveTimeouts: 0, idleTimeouts: 0, messagesReceived: 0, bytesReceived: 0, messagesSent: 0,
            bytesSent: 0, closesByCode: [:])
    }

    /// Adds `other`'s counts to these.
    public mutating func add(_ other: Self) {
        self.open += other.open
        self.slowConsumersClosed += other.slowConsumersClosed
        self.messagesDroppedForSlowConsumers += other.messagesDroppedForSlowConsumers
        self.protocolViolations += other.protocolViolations
        self.keepaliveTimeouts += other.keepaliveTimeouts
        self.idleTimeouts += other.idleTimeouts
        self.messagesReceived += other.messagesReceived
        self.bytesReceived += other.bytesReceived
        self.messagesSent += other.messagesSent
        self.bytesSent += other.bytesSent
        self.closesByCode.merge(other.closesByCode, uniquingKeysWith: +)
    }
}
