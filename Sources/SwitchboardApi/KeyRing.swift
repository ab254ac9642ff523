import Logging
import NIOCore
import SwitchboardAuth
import SwitchboardLocks

/// The keys of the server API and of `POST /publish/{channel}`, with one request bucket each: a key has its rate
/// whichever endpoint it uses.
final class KeyRing: Sendable {
    /// What a presented secret comes to.
    enum Check {
        case unknown
        /// The key, over its rate: try again in `seconds`.
        case overRate(ApiKey, seconds: Int)
        case accepted(ApiKey)
        /// The client's address presented too many wrong keys: nothing compared, try again in `seconds`.
        case throttled(seconds: Int)
    }

    /// One address's wrong keys: its bucket, and what is to be logged.
    private struct Failures {
        var bucket: TokenBucket
        var sinceLog = 0
        var lastLog: UInt64?
    }

    /// The most addresses whose failures are kept; past it those with a full bucket (which say nothing) go first.
    static let maxTrackedAddresses = 10_000
    /// Failures are logged at most once per address per this many nanoseconds.
    static let logInterval: UInt64 = 10_000_000_000

    let keys: [ApiKey]
    /// Each key's request bucket, by index in `keys`.
    private let buckets: Locked<[TokenBucket]>
    private let failures = Locked<[String: Failures]>([:])
    private let failedKeys: TokenBucket.Limit
    private let limitsLoopback: Bool
    private let logger: Logger

    /// The `--api-key`s, then the publish keys, each at its own rate, and the publish token (`publish` on every
    /// channel) at the configured one.
    init(_ configuration: ApiConfiguration, logger: Logger) {
        self.failedKeys = configuration.failedKeys
        self.limitsLoopback = configuration.limitsLoopback
        self.logger = logger
        var keys = configuration.apiKeys + configuration.publishKeys.map(ApiKey.init)
        if let token = configuration.publishToken {
            keys.append(
                ApiKey(
                    name: "publish-token", secret: token, operations: [.publish], channels: [.every],
                    rate: configuration.keyRate))
        }
        self.keys = keys
        let now = NIODeadline.now().uptimeNanoseconds
        self.buckets = Locked(keys.map { TokenBucket($0.rate, now: now) })
    }

    /// The key whose secret is `presented` (by the client at `address`), and whether it is within its rate (one
    /// request is taken). A missing or wrong key counts against the address.
    func check(_ presented: String?, from address: String?) -> Check {
        let now = NIODeadline.now().uptimeNanoseconds
        let counted = address.flatMap { self.limitsLoopback || !PeerAddress.isLoopback($0) ? $0 : nil }
        if let counted, let wait = self.failures.withLock({ $0[counted]?.bucket.wait(now: now) }) {
            return .throttled(seconds: max(1, Int((wait + 999_999_999) / 1_000_000_000)))
        }
        // Every key is compared in full, so response times do not reveal which or how much matched.
        var found: Int?
        for (index, key) in self.keys.enumerated() where Self.constantTimeEqual(presented ?? "", key.secret) {
            found = found ?? index
        }
        guard let index = found else {
            if let counted { self.failed(counted, now: now) }
            return .unknown
        }
        guard let wait = self.buckets.withLock({ $0[index].take(now: now) }) else { return .accepted(self.keys[index]) }
        return .overRate(self.keys[index], seconds: max(1, Int((wait + 999_999_999) / 1_000_000_000)))
    }

    /// Counts a wrong key from `address`, and logs the address's failures once per interval.
    private func failed(_ address: String, now: UInt64) {
        let toLog = self.failures.withLock { table -> Int in
            if table[address] == nil, table.count >= Self.maxTrackedAddresses {
                table = table.filter { entry in
                    var bucket = entry.value.bucket
                    return !bucket.isFull(now: now)
                }
                if table.count >= Self.maxTrackedAddresses { table.removeAll(keepingCapacity: true) }
            }
            var entry = table[address] ?? Failures(bucket: TokenBucket(self.failedKeys, now: now))
            _ = entry.bucket.take(now: now)
            entry.sinceLog += 1
            defer { table[address] = entry }
            if let last = entry.lastLog, now - last < Self.logInterval { return 0 }
            entry.lastLog = now
            defer { entry.sinceLog = 0 }
            return entry.sinceLog
        }
        guard toLog > 0 else { return }
        self.logger.warning(
            "Wrong API keys presented",
            metadata: [
                "address": "\(address)", "failures": "\(toLog)",
                "limit": "\(self.failedKeys); then 429 without comparing",
            ])
    }

    /// Compares without stopping at the first difference.
    private static func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8)
        let b = Array(rhs.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
