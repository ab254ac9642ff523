public import CoreMetrics
public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import SwitchboardLocks
public import SwitchboardPubSub
public import SwitchboardWebSocket
import Synchronization

/// The fan-out engine: topics, their members on every event loop, and one broker subscription per topic and process.
///
/// Attach sockets (or any ``TopicSink``) to a topic; every message published to that topic through the broker, on
/// any node, reaches every member. A message from the broker is framed once (``PreparedMessage``) on the thread
/// the broker delivers it on and handed straight to the mailbox of each event loop with members: one hop, no hub
/// loop in between. Each loop's drain resolves the frames once per compression setting (``PreparedFrames``) and
/// writes the same buffers to all of that loop's members: no task, copy or lock per recipient. A loop that fell
/// behind sends its whole backlog to each socket with one write and so catches up; past
/// ``Configuration/maxBacklogBytes`` it drops new messages and its members get a gap where they were lost. Slow
/// sockets are the WebSocket layer's business (their outbound queue is bounded), so one slow reader never holds up
/// the others.
///
/// ```swift
/// let topics = Topics(broker: broker, logger: logger)
/// router.get("/orders/:id") { request in
///     let reservation = try await topics.reserve("orders.\(request.parameters["id"] ?? "")", on: request.eventLoop)
///     return WebSocket.upgrade(request) { socket in reservation.attach(socket) }
/// }
/// try await topics.publish(ByteBuffer(string: #"{"state":"shipped"}"#), to: "orders.1042")
/// ```
public final class Topics: Sendable {
    /// The broker the topics' messages go through.
    public let broker: any Broker
    let configuration: Configuration
    let logger: Logger
    /// Topics by name, with the references (reservations and memberships) that keep each alive.
    private let registry = NIOLockedValueBox<[String: Slot]>([:])
    private let loops = NIOLockedValueBox<[ObjectIdentifier: LoopFanOut]>([:])
    let counters = Counters()
    /// The fan-out lag (broker delivery to socket write, per message and event loop); `nil` records nothing.
    let lagTimer: CoreMetrics.Timer?

    /// Creates an engine on `broker`.
    ///
    /// - Parameters:
    ///   - broker: Where messages are published and subscribed: a `LocalBroker` in one process, a `RedisBroker`
    ///     across nodes.
    ///   - configuration: The backlog cap and the message kind.
    ///   - logger: Where the engine logs (overloaded loops, dropped payloads).
    ///   - metricsFactory: Where the fan-out lag is recorded, as the timer `switchboard_fanout_lag_seconds` (from the
    ///     broker's delivery to the socket write, per message and event loop); `nil` records nothing and reads no
    ///     clock. Counts are in ``statistics``.
    public init(
        broker: any Broker, configuration: Configuration = .init(), logger: Logger,
        metricsFactory: (any MetricsFactory)? = MetricsSystem.factory
    ) {
        self.broker = broker
        self.configuration = configuration
        self.logger = logger
        self.lagTimer = metricsFactory.map {
            CoreMetrics.Timer(label: "switchboard_fanout_lag_seconds", dimensions: [], factory: $0)
        }
    }

    // MARK: Publishing

    /// Publishes `payload` to every member of `topic` on every node.
    ///
    /// - Throws: The broker's error when it cannot publish (Redis unreachable, say).
    public func publish(_ payload: ByteBuffer, to topic: String) async throws {
        try await self.broker.publish(payload, to: topic)
    }

    /// Publishes without suspending, from any thread; messages published from one thread keep their order.
    ///
    /// - Parameter promise: Completes once the broker accepted the message, or fails with its error.
    public func publish(_ payload: ByteBuffer, to topic: String, promise: EventLoopPromise<Void>?) {
        self.broker.publish(payload, to: topic, promise: promise)
    }

    // MARK: Membership

    /// Reserves a place in `topic` for a member on `eventLoop`: returns once the topic's broker subscription is
    /// established, and from then on what the topic delivers on that loop is held for the member, so a member
    /// attached with the reservation misses nothing published after this returns.
    ///
    /// Reserve before a WebSocket handshake, for the request's loop, and attach in its set-up closure: the client's
    /// first message, or a notification published as soon as the handshake was answered, reaches it.
    ///
    /// ```swift
    /// let reservation = try await topics.reserve("orders.1042", on: request.eventLoop)
    /// return WebSocket.upgrade(request) { socket in reservation.attach(socket) }
    /// ```
    ///
    /// - Parameters:
    ///   - topic: The topic.
    ///   - eventLoop: The loop the member will be attached on. `nil` holds nothing: the member then receives
    ///     what is published once it is attached.
    /// - Returns: The reservation; it holds the topic until attached, released, or deallocated.
    /// - Throws: The broker's error when it cannot subscribe.
    public func reserve(_ topic: String, on eventLoop: (any EventLoop)?) async throws -> TopicReservation {
        let state = self.registry.withLockedValue { registry -> TopicState in
            var slot = registry[topic] ?? Slot(state: TopicState(name: topic, engine: self), references: 0)
            slot.references += 1
            registry[topic] = slot
            return slot.state
        }
        var held: TopicReservation.Held?
        if let eventLoop {
            let loop = state.loop(for: eventLoop)
            let (maxBytes, counters) = (self.configuration.maxHeldBytes, self.counters)
            do {
                let messages = try await eventLoop.submit {
                    let messages = HeldMessages(maxBytes: maxBytes, counters: counters)
                    loop.addHeld(messages)
                    return NIOLoopBound(messages, eventLoop: eventLoop)
                }.value()
                held = .init(loop: loop, messages: messages)
            } catch {
                self.release(state)
                throw error
            }
        }
        // Made before subscribing: if subscribing throws, the reservation's deinit gives everything back.
        let reservation = TopicReservation(topic: state, held: held)
        try await state.subscribe()
        return reservation
    }

    /// Attaches `socket` to `topic` until the socket closes or the membership is cancelled.
    ///
    /// - Parameters:
    ///   - socket: The socket; may be on any event loop.
    ///   - topic: The topic.
    ///   - onGap: What the socket is told when messages may have been lost.
    /// - Returns: The membership, once the socket receives the topic's messages: it misses nothing published after
    ///   this returns.
    /// - Throws: The broker's error when it cannot subscribe.
    @discardableResult
    public func attach(
        _ socket: WebSocket, to topic: String, onGap: TopicGapPolicy = .ignore
    ) async throws -> TopicMembership {
        let reservation = try await self.reserve(topic, on: socket.eventLoop)
        return try await socket.eventLoop.submit { reservation.attach(socket, onGap: onGap) }.value()
    }

    // MARK: Counts

    /// The members of `topic` on this node.
    public func memberCount(of topic: String) -> Int {
        self.registry.withLockedValue { $0[topic]?.state }?.memberCount ?? 0
    }

    /// Every topic with members (or reservations) on this node, with its member count.
    public func memberCounts() -> [String: Int] {
        let states = self.registry.withLockedValue { $0.values.map(\.state) }
        return Dictionary(uniqueKeysWithValues: states.map { ($0.name, $0.memberCount) })
    }

    /// What the engine has done since it started.
    public var statistics: Statistics {
        let topics = self.registry.withLockedValue { $0.count }
        let backlog = self.loops.withLockedValue { $0.values.map(\.backlogBytes) }.reduce(0, +)
        return Statistics(
            topics: topics,
            members: self.counters.members.load(ordering: .relaxed),
            deliveries: self.counters.deliveries.load(ordering: .relaxed),
            deliveredBytes: self.counters.deliveredBytes.load(ordering: .relaxed),
            backlogBytes: backlog,
            droppedForBacklog: self.counters.droppedForBacklog.load(ordering: .relaxed),
            droppedInvalid: self.counters.droppedInvalid.load(ordering: .relaxed),
            droppedBeforeAttach: self.counters.droppedBeforeAttach.load(ordering: .relaxed),
            gaps: self.counters.gaps.load(ordering: .relaxed)
        )
    }

    // MARK: Internals

    /// The fan-out of `eventLoop`, made on first use; one per loop for the engine's life (a group's loops).
    func fanOut(for eventLoop: any EventLoop) -> LoopFanOut {
        self.loops.withLockedValue { loops in
            let key = ObjectIdentifier(eventLoop)
            if let fanOut = loops[key] { return fanOut }
            let fanOut = LoopFanOut(
                eventLoop: eventLoop, maxBacklogBytes: self.configuration.maxBacklogBytes, counters: self.counters,
                lagTimer: self.lagTimer, logger: self.logger)
            loops[key] = fanOut
            return fanOut
        }
    }

    /// Gives back one reference to `state`; the last one ends the topic's broker subscription.
    func release(_ state: TopicState) {
        let closing = self.registry.withLockedValue { registry -> Bool in
            guard var slot = registry[state.name], slot.state === state else { return false }
            slot.references -= 1
            registry[state.name] = slot.references > 0 ? slot : nil
            return slot.references == 0
        }
        if closing { state.close() }
    }

    private struct Slot {
        let state: TopicState
        var references: Int
    }

    /// Makes a broker payload a prepared message of the configured kind; `nil` (counted) if it cannot be one.
    func prepare(_ payload: ByteBuffer, topic: String) -> PreparedMessage? {
        switch self.configuration.messageKind {
        case .text:
            guard let text = WebSocketMessage.text(validating: payload) else {
                // Anyone with access to Redis can publish; a text frame must be UTF-8, so such a payload is dropped.
                self.counters.droppedInvalid.wrappingAdd(1, ordering: .relaxed)
                self.logger.debug("Dropped a payload that is not UTF-8", metadata: ["switchboard.topic": "\(topic)"])
                return nil
            }
            return PreparedMessage(text)
        case .binary:
            return PreparedMessage(WebSocketMessage(kind: .binary, data: payload))
        }
    }

    /// The engine's counters.
    final class Counters: Sendable {
        let members = Atomic<Int>(0)
        let deliveries = Atomic<Int>(0)
        let deliveredBytes = Atomic<Int>(0)
        let droppedForBacklog = Atomic<Int>(0)
        let droppedInvalid = Atomic<Int>(0)
        let gaps = Atomic<Int>(0)
        let droppedBeforeAttach = Atomic<Int>(0)
    }
}
