import Synchronization

extension RedisClient {
    /// What the client's limits and deadlines have done since it started; for metrics.
    public struct Statistics: Sendable, Hashable {
        /// Commands failed at once because the connection's pending work was at its budget
        /// (``RedisConfiguration/maxPendingBytes`` or ``RedisConfiguration/maxPendingCommands``).
        public var refusedForBudget: Int
        /// Connections closed because a reply was overdue (``RedisConfiguration/commandTimeout``).
        public var timeouts: Int
        /// Commands failed at once because no connection was up.
        public var failedWhileDisconnected: Int
        /// Connections established after the first one.
        public var reconnects: Int
    }

    /// What the client's limits and deadlines have done since it started.
    public var statistics: Statistics {
        Statistics(
            refusedForBudget: self.counters.refusedForBudget.load(ordering: .relaxed),
            timeouts: self.counters.timeouts.load(ordering: .relaxed),
            failedWhileDisconnected: self.counters.failedWhileDisconnected.load(ordering: .relaxed),
            reconnects: self.counters.reconnects.load(ordering: .relaxed)
        )
    }
}

/// The counters behind ``RedisClient/Statistics``, shared by a client's connections over its reconnections.
final class RedisCounters: Sendable {
    let refusedForBudget = Atomic<Int>(0)
    let timeouts = Atomic<Int>(0)
    let failedWhileDisconnected = Atomic<Int>(0)
    let reconnects = Atomic<Int>(0)
}
