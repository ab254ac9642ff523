import NIOCore
import Switchboard
import Synchronization

/// The connection's inbound parts, read by the tasks that take turns: the connection loop (request heads),
/// the app (request body), the hijacker (raw bytes). One reader at a time; a second concurrent reader gets
/// `RequestBodyError.concurrentRead` instead of a place in line.
final class InboundReader: Sendable {
    private let io: ConnectionIO
    private let busy = Atomic<Bool>(false)

    init(_ io: ConnectionIO) {
        self.io = io
    }

    /// The next inbound part, or `nil` once the input has ended.
    ///
    /// - Parameter timeout: How long to wait for it, if at all; past it the read throws `RequestBodyError.timedOut`.
    /// - Throws: The channel's error (the first time only), `concurrentRead`, or `timedOut`.
    func next(timeout: TimeAmount? = nil) async throws -> ConnectionInbound? {
        guard self.busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            throw RequestBodyError.concurrentRead
        }
        defer { self.busy.store(false, ordering: .releasing) }
        return try await self.io.next(timeout: timeout)
    }
}
