import NIOCore
import SwitchboardLocks

/// The connection task's handle on its ``ConnectionBridgeHandler``: read parts, write bytes.
///
/// On the channel's event loop (the normal case: connection tasks prefer an `EventLoopTaskExecutor`), a read
/// of a buffered part and a write to a writable socket complete without suspending. From any other thread
/// each call hops to the event loop first.
struct ConnectionIO: Sendable {
    let eventLoop: any EventLoop
    let bridge: NIOLoopBound<ConnectionBridgeHandler>

    /// The next inbound part, or `nil` once the input has ended.
    ///
    /// - Parameter timeout: How long to wait if nothing is buffered; `nil` waits as long as it takes.
    /// - Throws: The channel's error (once; `nil` follows), or `RequestBodyError.timedOut`.
    func next(timeout: TimeAmount? = nil) async throws -> ConnectionInbound? {
        if self.eventLoop.inEventLoop {
            switch self.bridge.value.poll() {
            case .part(let part): return part
            case .end: return nil
            case .failed(let error): throw error
            case .empty: break
            }
        }
        let bridge = self.bridge
        let eventLoop = self.eventLoop
        let part = try await withCheckedThrowingContinuation { continuation in
            if eventLoop.inEventLoop {
                bridge.value.waitForPart(continuation, timeout: timeout)
            } else {
                eventLoop.execute { bridge.value.waitForPart(continuation, timeout: timeout) }
            }
        }
        HandOver.acquire()
        return part
    }

    /// Writes and flushes `part`, first waiting while the socket is not writable (backpressure).
    ///
    /// - Throws: `ChannelError.ioOnClosedChannel` once the connection is closed.
    func write(_ part: ConnectionOutbound) async throws {
        try await self.write(contentsOf: CollectionOfOne(part))
    }

    /// Writes `parts` and flushes once, first waiting while the socket is not writable.
    ///
    /// - Throws: `ChannelError.ioOnClosedChannel` once the connection is closed.
    func write(contentsOf parts: some Collection<ConnectionOutbound> & Sendable) async throws {
        if self.eventLoop.inEventLoop, self.bridge.value.isWritable {
            try self.bridge.value.writeAndFlush(parts)
            return
        }
        let bridge = self.bridge
        let eventLoop = self.eventLoop
        while true {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                if eventLoop.inEventLoop {
                    bridge.value.waitForWritability(continuation)
                } else {
                    eventLoop.execute { bridge.value.waitForWritability(continuation) }
                }
            }
            if eventLoop.inEventLoop {
                try bridge.value.writeAndFlush(parts)
                return
            }
            // Off the loop (apps not run on the event loop): write there.
            let written = try await eventLoop.submit { () -> Bool in
                guard bridge.value.isWritable else { return false }
                try bridge.value.writeAndFlush(parts)
                return true
            }.value()
            if written { return }
        }
    }
}
