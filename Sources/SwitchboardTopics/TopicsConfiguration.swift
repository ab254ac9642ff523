public import SwitchboardWebSocket

extension Topics {
    /// The engine's limits and message kind.
    public struct Configuration: Sendable {
        /// The most message bytes waiting for one event loop's members, across topics.
        ///
        /// A loop that falls behind catches up by sending its backlog to each socket in one write; one that stays
        /// overloaded past this drops new messages (logged, counted in ``Topics/statistics``), and its members of
        /// the topics that lost messages get a gap (``TopicSink/receiveGap(from:)``) where the loss happened.
        public var maxBacklogBytes: Int
        /// What broker payloads become: text (payloads that are not UTF-8 are dropped and counted, since a text
        /// frame must be UTF-8) or binary messages.
        public var messageKind: WebSocketMessage.Kind
        /// The most message bytes held for one reservation until its member attaches (a handshake in flight); past
        /// it, what was held is dropped (counted in ``Topics/statistics``) and the member gets a gap instead.
        public var maxHeldBytes: Int

        /// Creates a configuration.
        public init(
            maxBacklogBytes: Int = 64 * 1024 * 1024,
            messageKind: WebSocketMessage.Kind = .text,
            maxHeldBytes: Int = 1024 * 1024
        ) {
            self.maxBacklogBytes = maxBacklogBytes
            self.messageKind = messageKind
            self.maxHeldBytes = maxHeldBytes
        }
    }

    /// What the engine has done since it started; for metrics.
    public struct Statistics: Sendable, Hashable {
        /// Topics with members (or reservations) now.
        public var topics: Int
        /// Memberships now, over all topics.
        public var members: Int
        /// Messages handed to members (one per member and message; a room member still joining may hold some back).
        public var deliveries: Int
        /// The wire bytes of those deliveries (frames, compressed where the member negotiated it).
        public var deliveredBytes: Int
        /// Message bytes waiting in the event loops' mailboxes now (``Configuration/maxBacklogBytes`` per loop).
        public var backlogBytes: Int
        /// Messages dropped because an event loop's backlog was full.
        public var droppedForBacklog: Int
        /// Broker payloads dropped because a text topic's payload was not UTF-8.
        public var droppedInvalid: Int
        /// Messages held for a reservation and dropped because its member did not attach in time (it got a gap).
        public var droppedBeforeAttach: Int
        /// Gaps the broker reported (a lost Redis connection), counted once per topic.
        public var gaps: Int
    }
}
