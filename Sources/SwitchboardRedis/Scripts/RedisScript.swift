import Crypto

/// A Lua script that runs with `EVALSHA`, so its source crosses the network once per connection, not once per call.
///
/// ``RedisClient/evaluate(_:keys:arguments:)`` pipelines `SCRIPT LOAD` ahead of the script's first use on each
/// connection (so a Redis that restarted empty never answers `NOSCRIPT` to it), and falls back to `EVAL` once if
/// the script cache was flushed under it (`SCRIPT FLUSH`).
///
/// ```swift
/// let bump = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")
/// let value = try await client.evaluate(bump, keys: ["counter"], arguments: ["2"])
/// ```
public struct RedisScript: Sendable, Hashable {
    /// The Lua source.
    public let source: String
    /// The SHA-1 of the source in lowercase hex: the name Redis caches it under.
    public let sha1: String

    /// The same script publishing with `SPUBLISH` (each `redis.call('PUBLISH'` becomes `redis.call('SPUBLISH'`),
    /// for Redis Cluster's sharded channels; the channel must be one of the script's keys.
    public var sharded: RedisScript {
        RedisScript(self.source.replacing("redis.call('PUBLISH'", with: "redis.call('SPUBLISH'"))
    }

    /// The variant for `router`: ``sharded`` where channels are.
    public func variant(for router: some RedisRouter) -> RedisScript {
        router.publishesSharded ? self.sharded : self
    }

    /// Creates a script from its Lua source.
    public init(_ source: String) {
        self.source = source
        self.sha1 = Insecure.SHA1.hash(data: Array(source.utf8)).map { byte in
            let hex = String(byte, radix: 16)
            return byte < 16 ? "0" + hex : hex
        }.joined()
    }
}
