import NIOCore
import Switchboard
import Synchronization

/// The one iterator over a connection's inbound stream, shared by the tasks that take turns reading it:
/// the connection loop (request heads), the app (request body), the hijacker (raw bytes).
///
/// `NIOAsyncChannelInboundStream` allows a single iterator, and its iterator is not `Sendable`.
// @unchecked Sendable is sound here: `iterator` is touched only inside `next()`, between a successful
// compare-exchange of `busy` from false to true (acquiring) and its store back to false (releasing). So at
// most one task uses the iterator at a time, and each user sees the previous user's writes. A second task
// calling `next()` concurrently gets `RequestBodyError.concurrentRead` instead of touching it.
final class InboundReader: @unchecked Sendable {
    private var iterator: NIOAsyncChannelInboundStream<ConnectionInbound>.AsyncIterator
    private var finished = false
    private let busy = Atomic<Bool>(false)

    init(_ iterator: NIOAsyncChannelInboundStream<ConnectionInbound>.AsyncIterator) {
        self.iterator = iterator
    }

    /// The next inbound part, or `nil` once the stream has ended or failed.
    ///
    /// - Throws: The channel's error (the first time only), or `concurrentRead`.
    func next() async throws -> ConnectionInbound? {
        guard self.busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            throw RequestBodyError.concurrentRead
        }
        defer { self.busy.store(false, ordering: .releasing) }
        if self.finished { return nil }
        do {
            guard let part = try await self.iterator.next() else {
                self.finished = true
                return nil
            }
            return part
        } catch {
            self.finished = true
            throw error
        }
    }
}
