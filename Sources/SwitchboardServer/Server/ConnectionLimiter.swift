import Logging
import NIOCore
import SwitchboardLocks
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// Counts open connections, in all and per IP address, and decides whether a new one may be served.
///
/// One lock per accepted and per closed connection (not per request or message). The per-address table holds only
/// addresses with open connections, so it is bounded by the connection cap.
final class ConnectionLimiter: Sendable {
    enum Decision: Equatable {
        case admitted
        case refused(Refusal)
    }

    enum Refusal: Equatable {
        case nodeFull
        case addressFull
        case addressRate

        /// The `503` body: what a client, or whoever reads its logs, needs to know.
        var message: String {
            switch self {
            case .nodeFull: "the server is at its connection limit; try again later"
            case .addressFull: "too many connections from your address; close some and try again"
            case .addressRate: "too many new connections from your address; slow down"
            }
        }
    }

    private struct State {
        var open = 0
        var perAddress: [AddressKey: Int] = [:]
        /// New-connection buckets of addresses seen lately: tokens left, and when they were counted (nanoseconds).
        var rates: [AddressKey: (tokens: Double, updated: UInt64)] = [:]
        var refusedSinceLog = 0
        var lastLog: NIODeadline?
    }

    /// An IP address without its port; `nil` for anything else (a Unix socket).
    struct AddressKey: Hashable {
        let address: String

        init?(_ address: SocketAddress?) {
            guard let ip = address?.ipAddress else { return nil }
            self.address = ip
        }
    }

    let maxConnections: Int
    let maxPerAddress: Int?
    /// Whether loopback peers are outside ``maxPerAddress`` (the rate still applies to them).
    let exemptsLoopback: Bool
    /// New connections per second from one address, after a burst of twice as many; `nil` for no limit.
    let ratePerAddress: Double?
    /// Peers that are proxies: no per-address cap or rate at accept (their clients' requests are rated instead).
    let trustedProxies: [IPAddressRange]
    /// The most addresses whose rate is tracked; past it, full buckets (which say nothing) are dropped first.
    static let maxTrackedAddresses = 100_000
    private let logger: Logger
    private let state = Locked(State())
    private let counters: ServerCounters
    /// Refused connections waiting for their client to close (each holds a descriptor).
    private let lingering = Atomic<Int>(0)
    /// The most refused connections that linger at once; more close as soon as their 503 is written.
    static let maxLingering = 32

    init(
        maxConnections: Int?, maxPerAddress: Int?, exemptsLoopback: Bool = false, ratePerAddress: Double? = nil,
        trustedProxies: [IPAddressRange] = [], counters: ServerCounters, logger: Logger
    ) {
        self.trustedProxies = trustedProxies
        self.exemptsLoopback = exemptsLoopback
        self.maxConnections = maxConnections ?? Self.defaultMaxConnections
        self.maxPerAddress = maxPerAddress
        self.ratePerAddress = ratePerAddress
        self.counters = counters
        self.logger = logger
    }

    /// The open-file limit less 64 descriptors for everything that is not a client connection.
    static var defaultMaxConnections: Int {
        #if canImport(Glibc)
            var limit = rlimit()
            if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur != rlim_t.max {
                return max(Int(clamping: limit.rlim_cur) - 64, 16)
            }
        #endif
        return 1 << 20
    }

    var openConnections: Int { self.state.withLock { $0.open } }

    /// Counts the connection in, or says why not; an admitted one must be ``release(_:)``d when it closes.
    func admit(_ address: SocketAddress?) -> Decision {
        // The address's text only when a per-address cap or rate needs it; none for a trusted proxy.
        let key =
            self.maxPerAddress == nil && self.ratePerAddress == nil || self.isTrustedProxy(address)
            ? nil : AddressKey(address)
        let capped = key != nil && self.isCapped(address)
        let now = self.ratePerAddress == nil ? 0 : NIODeadline.now().uptimeNanoseconds
        let decision = self.state.withLock { state -> Decision in
            if state.open >= self.maxConnections {
                state.refusedSinceLog += 1
                return .refused(.nodeFull)
            }
            if let key, let rate = self.ratePerAddress, !Self.takeToken(&state, key, rate: rate, now: now) {
                state.refusedSinceLog += 1
                return .refused(.addressRate)
            }
            if let key, capped, let maxPerAddress = self.maxPerAddress {
                let count = state.perAddress[key, default: 0]
                if count >= maxPerAddress {
                    state.refusedSinceLog += 1
                    return .refused(.addressFull)
                }
                state.perAddress[key] = count + 1
            }
            state.open += 1
            return .admitted
        }
        if case .refused(let refusal) = decision { self.refused(refusal, address: address) }
        return decision
    }

    /// How long a refused connection may linger for its client to close: as other lingering closes (while the client
    /// sends, 2 s without), unless ``maxLingering`` already do. Call once per refused connection, with its close future.
    func lingerTime(until closed: EventLoopFuture<Void>) -> TimeAmount {
        guard self.lingering.wrappingAdd(1, ordering: .relaxed).newValue <= Self.maxLingering else {
            self.lingering.wrappingSubtract(1, ordering: .relaxed)
            return .zero
        }
        closed.whenComplete { _ in self.lingering.wrappingSubtract(1, ordering: .relaxed) }
        return Server.lingerTime
    }

    /// Takes a new-connection token from `key`'s bucket (burst `2 * rate`); `false` when there is none.
    private static func takeToken(_ state: inout State, _ key: AddressKey, rate: Double, now: UInt64) -> Bool {
        let burst = 2 * rate
        var bucket = state.rates[key] ?? (tokens: burst, updated: now)
        bucket.tokens = min(burst, bucket.tokens + Double(now &- bucket.updated) / 1e9 * rate)
        bucket.updated = now
        guard bucket.tokens >= 1 else {
            state.rates[key] = bucket
            return false
        }
        bucket.tokens -= 1
        if state.rates.count >= Self.maxTrackedAddresses, state.rates[key] == nil {
            // A full bucket is the same as no entry: drop those. If none is full, the oldest half goes (a flood of
            // addresses then costs at most a burst per address, not unbounded memory).
            state.rates = state.rates.filter { $0.value.tokens + Double(now &- $0.value.updated) / 1e9 * rate < burst }
            if state.rates.count >= Self.maxTrackedAddresses {
                let cutoff = state.rates.values.map(\.updated).sorted()[state.rates.count / 2]
                state.rates = state.rates.filter { $0.value.updated > cutoff }
            }
        }
        state.rates[key] = bucket
        return true
    }

    /// Whether ``maxPerAddress`` applies to `address` (it is not an exempt loopback one).
    private func isCapped(_ address: SocketAddress?) -> Bool {
        guard self.exemptsLoopback, let address else { return true }
        return !Self.loopback.contains { $0.contains(address) }
    }

    private static let loopback = [IPAddressRange("127.0.0.0/8")!, IPAddressRange("::1")!]

    /// Whether `address` is a trusted proxy's.
    func isTrustedProxy(_ address: SocketAddress?) -> Bool {
        guard let address, !self.trustedProxies.isEmpty else { return false }
        return self.trustedProxies.contains { $0.contains(address) }
    }

    /// Takes a token from the forwarded client's bucket for one request that came through a trusted proxy;
    /// `false` (counted and logged as a rate refusal) when it has none.
    func admitForwarded(_ client: SocketAddress?) -> Bool {
        guard let rate = self.ratePerAddress, let key = AddressKey(client) else { return true }
        let now = NIODeadline.now().uptimeNanoseconds
        guard self.state.withLock({ Self.takeToken(&$0, key, rate: rate, now: now) }) else {
            self.refused(.addressRate, address: client)
            return false
        }
        return true
    }

    /// Counts a closed connection out.
    func release(_ address: SocketAddress?) {
        let key =
            self.maxPerAddress == nil || self.isTrustedProxy(address) || !self.isCapped(address)
            ? nil : AddressKey(address)
        self.state.withLock { state in
            state.open -= 1
            if let key, self.maxPerAddress != nil, let count = state.perAddress[key] {
                state.perAddress[key] = count > 1 ? count - 1 : nil
            }
        }
    }

    /// Counts and logs a refusal: the first one, then at most one line every 10 s with the count, so a flood of
    /// connections cannot flood the log.
    private func refused(_ refusal: Refusal, address: SocketAddress?) {
        switch refusal {
        case .nodeFull: self.counters.refusedForConnectionLimit.wrappingAdd(1, ordering: .relaxed)
        case .addressFull: self.counters.refusedForAddressLimit.wrappingAdd(1, ordering: .relaxed)
        case .addressRate: self.counters.refusedForAddressRate.wrappingAdd(1, ordering: .relaxed)
        }
        let now = NIODeadline.now()
        let (log, count, open) = self.state.withLock { state -> (Bool, Int, Int) in
            if let last = state.lastLog, now - last < .seconds(10) { return (false, 0, 0) }
            state.lastLog = now
            defer { state.refusedSinceLog = 0 }
            return (true, state.refusedSinceLog, state.open)
        }
        guard log else { return }
        switch refusal {
        case .nodeFull:
            self.logger.warning(
                "Connection limit reached: refusing new connections with 503 (raise --max-connections or the open-file limit)",
                metadata: [
                    "switchboard.open": "\(open)", "switchboard.limit": "\(self.maxConnections)",
                    "switchboard.refused": "\(count)",
                ])
        case .addressFull:
            self.logger.warning(
                "Per-address connection limit reached: refusing new connections from it with 503",
                metadata: [
                    "switchboard.peer": "\(address.map { "\($0)" } ?? "?")",
                    "switchboard.limit": "\(self.maxPerAddress ?? 0)", "switchboard.refused": "\(count)",
                ])
        case .addressRate:
            self.logger.warning(
                "Per-address connection rate reached: refusing new connections from it with 503",
                metadata: [
                    "switchboard.peer": "\(address.map { "\($0)" } ?? "?")",
                    "switchboard.rate": "\(self.ratePerAddress ?? 0)", "switchboard.refused": "\(count)",
                ])
        }
    }
}
