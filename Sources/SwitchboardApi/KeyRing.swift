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
    }

    let keys: [ApiKey]
    /// Each key's request bucket, by index in `keys`.
    private let buckets: Locked<[TokenBucket]>

    /// The `--api-key`s, then the publish keys, each at its own rate, and the publish token (`publish` on every
    /// channel) at the configured one.
    init(_ configuration: ApiConfiguration) {
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

    /// The key whose secret is `presented`, and whether it is within its rate (one request is taken).
    func check(_ presented: String) -> Check {
        // Every key is compared in full, so response times do not reveal which or how much matched.
        var found: Int?
        for (index, key) in self.keys.enumerated() where Self.constantTimeEqual(presented, key.secret) {
            found = found ?? index
        }
        guard let index = found else { return .unknown }
        let now = NIODeadline.now().uptimeNanoseconds
        guard let wait = self.buckets.withLock({ $0[index].take(now: now) }) else { return .accepted(self.keys[index]) }
        return .overRate(self.keys[index], seconds: max(1, Int((wait + 999_999_999) / 1_000_000_000)))
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
