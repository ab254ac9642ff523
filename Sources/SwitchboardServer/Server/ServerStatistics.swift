import Synchronization

extension Server {
    /// What the server's limits and deadlines have done since it started; for metrics and admin pages.
    public struct Statistics: Sendable, Hashable {
        /// Connections open now, hijacked ones included.
        public var openConnections: Int
        /// Connections answered `503` because ``ServerConfiguration/maxConnections`` were open.
        public var refusedForConnectionLimit: Int
        /// Connections answered `503` because ``ServerConfiguration/maxConnectionsPerAddress`` were open from
        /// their address.
        public var refusedForAddressLimit: Int
        /// Connections answered `503` because their address opened new ones faster than
        /// ``ServerConfiguration/connectionRatePerAddress``.
        public var refusedForAddressRate: Int
        /// `accept` calls that failed for want of descriptors or memory (each backs accepting off).
        public var acceptFailures: Int
        /// Connections closed because the client did not read a response for ``ServerConfiguration/writeTimeout``.
        public var writeTimeouts: Int
        /// Requests answered `408` because their head did not arrive within ``ServerConfiguration/headReadTimeout``.
        public var headReadTimeouts: Int
        /// Request bodies failed because no byte came for ``ServerConfiguration/bodyReadTimeout``.
        public var bodyReadTimeouts: Int
        /// Requests refused for their size: a head over ``ServerConfiguration/maxHeadSize`` or
        /// ``ServerConfiguration/maxHeaderCount`` (`431`), a body over ``ServerConfiguration/maxBodySize`` (`413`).
        public var oversizedRequests: Int
    }

    /// What the server's limits and deadlines have done since it started.
    public var statistics: Statistics {
        Statistics(
            openConnections: self.limiter.openConnections,
            refusedForConnectionLimit: self.counters.refusedForConnectionLimit.load(ordering: .relaxed),
            refusedForAddressLimit: self.counters.refusedForAddressLimit.load(ordering: .relaxed),
            refusedForAddressRate: self.counters.refusedForAddressRate.load(ordering: .relaxed),
            acceptFailures: self.counters.acceptFailures.load(ordering: .relaxed),
            writeTimeouts: self.counters.writeTimeouts.load(ordering: .relaxed),
            headReadTimeouts: self.counters.headReadTimeouts.load(ordering: .relaxed),
            bodyReadTimeouts: self.counters.bodyReadTimeouts.load(ordering: .relaxed),
            oversizedRequests: self.counters.oversizedRequests.load(ordering: .relaxed)
        )
    }
}

/// The counters behind ``Server/Statistics``, shared with the handlers that count.
final class ServerCounters: Sendable {
    let refusedForConnectionLimit = Atomic<Int>(0)
    let refusedForAddressLimit = Atomic<Int>(0)
    let refusedForAddressRate = Atomic<Int>(0)
    let acceptFailures = Atomic<Int>(0)
    let writeTimeouts = Atomic<Int>(0)
    let headReadTimeouts = Atomic<Int>(0)
    let bodyReadTimeouts = Atomic<Int>(0)
    let oversizedRequests = Atomic<Int>(0)
}
