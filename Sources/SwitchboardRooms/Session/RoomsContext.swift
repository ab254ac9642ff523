package import Logging
package import SwitchboardTopics

/// What a rooms session's adapter works with: the node's shared objects, each once. The narrow context a session
/// reaches the node through (never a chain of references).
package struct RoomsContext: Sendable {
    package let configuration: RoomsConfiguration
    /// The machine's settings, derived once from ``configuration``.
    package let settings: RoomSessionMachine.Settings
    package let topics: Topics
    package let log: any RoomLog
    package let presence: any PresenceStore
    package let registry: ConnectionRegistry
    package let memberIDs: MemberIDs
    package let counters: ChatCounters
    /// Told of sockets opening and closing and of messages said (webhooks); presence transitions reach it through
    /// the store.
    package let observer: (any ChatObserver)?
    package let logger: Logger

    package init(
        configuration: RoomsConfiguration, topics: Topics, log: any RoomLog, presence: any PresenceStore,
        registry: ConnectionRegistry, memberIDs: MemberIDs, counters: ChatCounters, observer: (any ChatObserver)?,
        logger: Logger
    ) {
        self.configuration = configuration
        self.settings = RoomSessionMachine.Settings(configuration)
        self.topics = topics
        self.log = log
        self.presence = presence
        self.registry = registry
        self.memberIDs = memberIDs
        self.counters = counters
        self.observer = observer
        self.logger = logger
    }
}

/// Member ids unique across nodes: a random node id and 64 random bits per socket. Not a counter: ids are shown to
/// everyone in a room, and sequential ones would tell how many sockets a node has served.
package final class MemberIDs: Sendable {
    /// This node's id.
    package let node: String

    package init(node: String = String(UInt64.random(in: 1 << 40...UInt64.max >> 8), radix: 36)) {
        self.node = node
    }

    package func next() -> String {
        "\(self.node)-\(String(UInt64.random(in: 1...UInt64.max), radix: 36))"
    }
}
