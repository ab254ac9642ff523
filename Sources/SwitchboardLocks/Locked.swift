// Re-exported, so that a file using `Locked` needs only `import SwitchboardLocks` in either build.
#if SWITCHBOARD_TSAN
    @_exported public import NIOConcurrencyHelpers

    /// A value behind a lock. In Thread Sanitizer builds (`SWITCHBOARD_TSAN=1`, see docs/DEVELOPMENT.md) it is
    /// NIO's `pthread_mutex_t` box, which TSan sees: the standard library's `Mutex` locks with a futex that TSan does
    /// not see on Linux, so every access under it would be reported as a race (`scripts/tsan-mutex/main.swift`
    /// shows it with two threads and nothing else).
    package typealias Locked<Value> = NIOLockedValueBox<Value>

    extension NIOLockedValueBox {
        /// `Mutex.withLock`'s spelling, so the code is the same in both builds.
        @inlinable
        package func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
            try self.withLockedValue(body)
        }
    }
#else
    @_exported public import Synchronization

    /// A value behind a lock: the standard library's `Mutex`, stored inline. (Thread Sanitizer builds swap in a
    /// lock TSan can see.)
    package typealias Locked<Value: ~Copyable> = Mutex<Value>
#endif
