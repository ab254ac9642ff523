package import SwitchboardAuth

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
    /// Frames of any kind per socket, refused ones included: every request costs, whatever it asks.
    package var frames = TokenBucket.Limit(rate: 50, burst: 100)
    /// `auth` requests per socket: each is a signature to verify.
    package var auth = TokenBucket.Limit(rate: 0.2, burst: 5)
    /// History bytes sent to a socket for its joins and re-syncs (estimated from the messages): a small request can
    /// ask for a room's whole history.
    package var catchUpBytes = TokenBucket.Limit(rate: 1024 * 1024, burst: 16 * 1024 * 1024)
    /// Refused requests in a row (any error answered to the client) after which the socket is closed (4008) and
    /// read no further.
    package var maxRefusals = 50
    /// Sockets one user may have open on this node (with tokens), over `/ws`, `/subscribe` and `/chat`; past it a
    /// `/ws` socket is closed with 4005, a `/chat` or `/subscribe` handshake refused with 503.
    package var connectionsPerUser = 32
    /// WebSockets one address may have open on this node; past it the handshake is refused with 503.
    package var socketsPerAddress = 128
    /// Room and `/chat` messages per address, over all its sockets on the node.
    package var addressSayMessages = TokenBucket.Limit(rate: 100, burst: 200)
    /// Rooms one client (a user; an address without a token) may have created and still hold open on the node.
    package var roomsPerClient = 100
    /// Whether loopback peers are held to the per-address limits (see ``ConnectionRegistry/Limits/limitsLoopback``).
    /// The node holds them (unless `--exempt-loopback`); `false` here, for the tests and benchmarks that build a
    /// chat directly and open many sockets from 127.0.0.1.
    package var limitsLoopback = false

    package init() {}

    /// No practical limit: for load tests and benchmarks that send from few sockets on purpose.
    package static let unlimited: ChatRateLimits = {
        var limits = ChatRateLimits()
        let plenty = TokenBucket.Limit(rate: 1e9, burst: 1e9)
        (limits.sayMessages, limits.sayBytes, limits.userSayMessages, limits.joins, limits.nicks) =
            (plenty, plenty, plenty, plenty, plenty)
        (limits.frames, limits.auth, limits.catchUpBytes) = (plenty, plenty, plenty)
        limits.maxRefusals = .max
        (limits.addressSayMessages, limits.socketsPerAddress, limits.roomsPerClient) = (plenty, .max, .max)
        return limits
    }()
}

/// One socket's buckets; used on its event loop only.
struct SocketRateLimits {
    var say: TokenBucket
    var sayBytes: TokenBucket
    var joins: TokenBucket
    var nicks: TokenBucket
    var frames: TokenBucket
    var auth: TokenBucket
    var catchUpBytes: TokenBucket
    /// Refusals since the last request that went through.
    var refusals = 0

    init(_ limits: ChatRateLimits, now: UInt64) {
        self.say = TokenBucket(limits.sayMessages, now: now)
        self.sayBytes = TokenBucket(limits.sayBytes, now: now)
        self.joins = TokenBucket(limits.joins, now: now)
        self.nicks = TokenBucket(limits.nicks, now: now)
        self.frames = TokenBucket(limits.frames, now: now)
        self.auth = TokenBucket(limits.auth, now: now)
        self.catchUpBytes = TokenBucket(limits.catchUpBytes, now: now)
    }
}
