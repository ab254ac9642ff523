/// A token bucket: `burst` tokens at most, refilled at `rate` per second. Used for per-connection and per-user
/// limits; not thread-safe (each bucket belongs to one event loop or one lock).
public struct TokenBucket: Sendable {
    /// A bucket's settings.
    public struct Limit: Sendable, Hashable, CustomStringConvertible {
        /// Tokens added per second.
        public var rate: Double
        /// The most tokens held, and so the largest burst.
        public var burst: Double

        /// Creates a limit; `rate` and `burst` must be positive.
        public init(rate: Double, burst: Double) {
            precondition(rate > 0 && burst > 0, "a limit's rate and burst must be positive")
            self.rate = rate
            self.burst = burst
        }

        public var description: String { "\(Self.format(self.burst)) then \(Self.format(self.rate))/s" }

        private static func format(_ value: Double) -> String {
            value == value.rounded() ? String(Int(value)) : String(value)
        }
    }

    public let limit: Limit
    private var tokens: Double
    private var updated: UInt64

    /// A full bucket at `now` (nanoseconds on a monotonic clock).
    public init(_ limit: Limit, now: UInt64) {
        self.limit = limit
        self.tokens = limit.burst
        self.updated = now
    }

    /// Takes `cost` tokens if there are that many; otherwise takes none and returns how long until there will be.
    ///
    /// - Returns: `nil` when taken; else the wait in nanoseconds.
    public mutating func take(_ cost: Double = 1, now: UInt64) -> UInt64? {
        self.refill(now: now)
        if self.tokens >= cost {
            self.tokens -= cost
            return nil
        }
        let missing = min(cost, self.limit.burst) - self.tokens
        return UInt64((missing / self.limit.rate * 1e9).rounded(.up))
    }

    /// Takes `cost` tokens whatever is left: the bucket may go into debt, and takes nothing more (``allows(_:now:)``
    /// is `false`) until it has refilled. For work whose size is known only once it is done (a history sent).
    public mutating func charge(_ cost: Double, now: UInt64) {
        self.refill(now: now)
        self.tokens -= cost
    }

    /// `nil` if `cost` tokens could be taken now, else the wait in nanoseconds until they could; takes nothing.
    public mutating func wait(for cost: Double = 1, now: UInt64) -> UInt64? {
        self.refill(now: now)
        guard self.tokens < cost else { return nil }
        return UInt64(((min(cost, self.limit.burst) - self.tokens) / self.limit.rate * 1e9).rounded(.up))
    }

    /// Whether the bucket is full (it says nothing then: it may be forgotten).
    public mutating func isFull(now: UInt64) -> Bool {
        self.refill(now: now)
        return self.tokens >= self.limit.burst
    }

    /// Whether `cost` tokens could be taken now, without taking them.
    public mutating func allows(_ cost: Double = 1, now: UInt64) -> Bool {
        self.refill(now: now)
        return self.tokens >= cost
    }

    private mutating func refill(now: UInt64) {
        guard now > self.updated else { return }
        self.tokens = min(self.limit.burst, self.tokens + Double(now - self.updated) / 1e9 * self.limit.rate)
        self.updated = now
    }
}
