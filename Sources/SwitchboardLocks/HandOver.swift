public import NIOCore

#if SWITCHBOARD_TSAN
    /// The lock `HandOver` passes through in Thread Sanitizer builds.
    @usableFromInline
    let handOverLock = NIOLock()
#endif

/// Makes Thread Sanitizer see a value cross from the thread that resumes a continuation to the task it resumes.
///
/// The Swift concurrency runtime orders the two, but TSan does not see it: when the resume comes before the task has
/// suspended, the task goes on without passing through anything TSan instruments (swiftlang/swift#57803), and TSan
/// reports the value's own storage as a race (CI saw it with a RESP reply built on the event loop and read by the
/// task that sent the command). In TSan builds `release()` before a resume and `acquire()` after the await pass
/// through one lock TSan sees, which orders them for it; in every other build both are empty and inlined away.
package enum HandOver {
    /// Call before resuming a continuation with a value built on this thread.
    @inlinable
    @inline(__always)
    package static func release() {
        #if SWITCHBOARD_TSAN
            handOverLock.withLock {}
        #endif
    }

    /// Call in the resumed task, after the await, before reading the value.
    @inlinable
    @inline(__always)
    package static func acquire() {
        #if SWITCHBOARD_TSAN
            handOverLock.withLock {}
        #endif
    }
}

extension EventLoopFuture where Value: Sendable {
    /// The future's value, awaited: `get()`, with the value handed over so that Thread Sanitizer sees its order (see
    /// `HandOver`). Code above the event loop awaits futures with this rather than `get()`.
    @inlinable
    package func value() async throws -> Value {
        #if SWITCHBOARD_TSAN
            let box = NIOLockedValueBox<Result<Value, any Error>?>(nil)
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                self.whenComplete { result in
                    box.withLockedValue { $0 = result }
                    continuation.resume()
                }
            }
            // Every path to here went through the `whenComplete` above.
            return try box.withLockedValue { $0! }.get()
        #else
            try await self.get()
        #endif
    }
}
