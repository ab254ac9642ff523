import NIOConcurrencyHelpers
import NIOCore

/// Compressors for prepared messages, reused across messages.
///
/// A zlib compressor with a 15-bit window allocates about 256 KiB and clears it on creation, which would cost more
/// than compressing a short chat message; prepared messages are compressed without context takeover, so one
/// compressor, reset after each message, serves any number of them. A few are kept per setting (one per thread
/// compressing at the same time is enough); they are `@unchecked Sendable` through the lock that hands each one to
/// a single user at a time.
enum Deflaters {
    private struct Key: Hashable {
        var windowBits: Int
        var level: Int
    }

    /// The most idle compressors kept per setting.
    private static let maxIdlePerKey = 4
    private static let idle = NIOLockedValueBox<[Key: [PooledDeflater]]>([:])

    /// Runs `body` with a compressor for `windowBits` and `level`, reset afterwards; `nil` if zlib failed.
    static func withDeflater<Result>(
        windowBits: Int, level: Int, _ body: (Deflater) throws -> Result
    ) -> Result? {
        let key = Key(windowBits: windowBits, level: level)
        let pooled =
            self.idle.withLockedValue { $0[key]?.popLast() }
            ?? (try? Deflater(windowBits: windowBits, level: level)).map(PooledDeflater.init)
        guard let pooled else { return nil }
        defer {
            pooled.deflater.reset()
            self.idle.withLockedValue { idle in
                if idle[key, default: []].count < self.maxIdlePerKey { idle[key, default: []].append(pooled) }
            }
        }
        return try? body(pooled.deflater)
    }
}

/// A compressor in the pool.
private final class PooledDeflater: @unchecked Sendable {
    // @unchecked Sendable is sound: a pooled compressor is used by one thread at a time; `Deflaters` hands it out
    // and takes it back under its lock, which orders one user's last use before the next user's first.
    let deflater: Deflater

    init(_ deflater: Deflater) {
        self.deflater = deflater
    }
}
