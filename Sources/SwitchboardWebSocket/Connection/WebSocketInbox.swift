import NIOConcurrencyHelpers
import NIOCore

/// Where messages go when the app reads them with `for try await` (``WebSocket/messages``) instead of a callback.
///
/// Bounded: when the app falls ``highWatermark`` messages behind, the handler stops reading from the socket until
/// the app catches up, so a fast peer cannot fill memory.
final class WebSocketInbox: Sendable {
    static let lowWatermark = 4
    static let highWatermark = 16

    typealias Producer = NIOThrowingAsyncSequenceProducer<
        WebSocketMessage, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, InboxDelegate
    >

    private let state = NIOLockedValueBox<(source: Producer.Source?, sequence: Producer?)>((nil, nil))

    /// Creates the sequence, wired to pause and resume reading on `handler`'s event loop.
    func open(handler: NIOLoopBound<WebSocketHandler>, eventLoop: any EventLoop) {
        let made = Producer.makeSequence(
            backPressureStrategy: .init(lowWatermark: Self.lowWatermark, highWatermark: Self.highWatermark),
            finishOnDeinit: true,
            delegate: InboxDelegate(handler: handler, eventLoop: eventLoop)
        )
        self.state.withLockedValue { $0 = (made.source, made.sequence) }
    }

    var sequence: Producer? { self.state.withLockedValue { $0.sequence } }

    /// Hands a message to the reader; `false` when the reader is behind and reading should pause.
    func yield(_ message: WebSocketMessage) -> Bool {
        guard let source = self.state.withLockedValue({ $0.source }) else { return true }
        switch source.yield(message) {
        case .produceMore: return true
        case .stopProducing: return false
        case .dropped: return true
        }
    }

    func finish(_ error: (any Error)?) {
        let source = self.state.withLockedValue { state -> Producer.Source? in
            defer { state.source = nil }
            return state.source
        }
        if let error { source?.finish(error) } else { source?.finish() }
    }
}

/// Resumes reading when the app catches up; closes the socket when the app stops iterating.
struct InboxDelegate: NIOAsyncSequenceProducerDelegate {
    let handler: NIOLoopBound<WebSocketHandler>
    let eventLoop: any EventLoop

    func produceMore() {
        let handler = self.handler
        self.eventLoop.execute { handler.value.resumeReading() }
    }

    func didTerminate() {
        let handler = self.handler
        self.eventLoop.execute { handler.value.close(code: .normalClosure, reason: "") }
    }
}

/// The messages of a WebSocket as an async sequence; it ends when the connection closes.
public struct WebSocketMessages: AsyncSequence, Sendable {
    public typealias Element = WebSocketMessage
    public typealias Failure = any Error

    let base: WebSocketInbox.Producer?

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: WebSocketInbox.Producer.AsyncIterator?

        public mutating func next() async throws -> WebSocketMessage? {
            try await self.base?.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.base?.makeAsyncIterator())
    }
}

extension WebSocket {
    /// The peer's messages, for apps that use ``upgrade(_:configuration:run:)``. Ends when the connection closes.
    public var messages: WebSocketMessages { WebSocketMessages(base: self.inbox?.sequence) }

    /// Called by the handler, on the loop, for every complete message.
    func deliver(_ message: WebSocketMessage, handler: WebSocketHandler) {
        if let onMessage = handler.onMessage {
            onMessage(self, message)
        } else if let inbox = self.inbox, !inbox.yield(message) {
            handler.pauseReading()
        }
    }

    func finishMessages(code: WebSocketCloseCode, reason: String) {
        self.inbox?.finish(nil)
    }
}
