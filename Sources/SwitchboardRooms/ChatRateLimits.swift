package import SwitchboardAuth
import SwitchboardLocks

/// How fast one socket, and one user over all their sockets on this node, may act (token buckets: a burst, then a
/// rate). At a limit the request is refused with `rate_limited` and `retryAfter`; a socket that keeps going past
/// ``maxRefusals`` refusals in a row is closed with 4008.
package struct ChatRateLimits: Sendable {
    /// Room messages per socket.
    package var sayMessages = TokenBucket.Limit(rate: 20, burst: 40)
    /// Room message bytes (of text) per socket.
    package var sayBytes = TokenBucket.Limit(rate: 32 * 1024, burst: 128 * 1024)
    /// Room messages per user, over all the user's sockets on the node (anonymous sockets: per socket only).
    package var userSayMessages = TokenBucket.Limit(rate: 40, burst: 80)
    /// Joins and leaves per socket.
    package var joins = TokenBucket.Limit(rate: 5, burst: 40)
    /// Nickname changes per socket.
    package var nicks = TokenBucket.Limit(rate: 0.5, burst: 10)
    /// Refusals in a row after which the socket is closed (4008).
    package var maxRefusals = 50
    /// Sockets one user may have open on this node (with tokens); past it the new one is closed with 4005.
    package var connectionsPerUser = 32

    package init() {}

    /// No practical limit: for load tests and benchmarks that send from few sockets on purpose.
    package static let unlimited: ChatRateLimits = {
        var limits = ChatRateLimits()
        let plenty = TokenBucket.Limit(rate: 1e9, burst: 1e9)
        (limits.sayMessages, limits.sayBytes, limits.userSayMessages, limits.joins, limits.nicks) =
            (plenty, plenty, plenty, plenty, plenty)
        return limits
    }()
}

/// One socket's buckets; used on its event loop only.
struct SocketRateLimits {
    var say: TokenBucket
    var sayBytes: TokenBucket
    var joins: TokenBucket
    var nicks: TokenBucket
    /// Refusals since the last request that went through.
    var refusals = 0

    init(_ limits: ChatRateLimits, now: UInt64) {
        self.say = TokenBucket(limits.sayMessages, now: now)
        self.sayBytes = TokenBucket(limits.sayBytes, now: now)
        self.joins = TokenBucket(limits.joins, now: now)
        self.nicks = TokenBucket(limits.nicks, now: now)
    }
}

/// Per-user state over a node's sockets: how many are open, and the user's message bucket.
package final class UserLimits: Sendable {
    private struct User {
        var connections = 0
        var say: TokenBucket
    }

    private let limits: ChatRateLimits
    private let users = Locked<[String: User]>([:])

    package init(limits: ChatRateLimits) {
        self.limits = limits
    }

    /// Counts a socket of `user` in; `false` (and not counted) if the user has as many as allowed.
    func connect(_ user: String, now: UInt64) -> Bool {
        self.users.withLock { users in
            var entry = users[user] ?? User(say: TokenBucket(self.limits.userSayMessages, now: now))
            guard entry.connections < self.limits.connectionsPerUser else { return false }
            entry.connections += 1
            users[user] = entry
            return true
        }
    }

    /// Counts a socket of `user` out; the user's state goes with their last socket.
    func disconnect(_ user: String) {
        self.users.withLock { users in
            guard var entry = users[user] else { return }
            entry.connections -= 1
            users[user] = entry.connections > 0 ? entry : nil
        }
    }

    /// Takes a message from `user`'s bucket; `nil` if taken, else nanoseconds to wait.
    func takeSay(_ user: String, now: UInt64) -> UInt64? {
        self.users.withLock { users in users[user]?.say.take(now: now) }
    }

    /// Users with sockets on this node.
    var count: Int { self.users.withLock { $0.count } }
}
