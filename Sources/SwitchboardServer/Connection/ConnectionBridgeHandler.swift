import NIOCore
import Switchboard
import SwitchboardLocks

/// The last handler of a connection's pipeline: where the connection's async code meets the channel.
///
/// It does what `NIOAsyncChannel` does for our one reader and one writer, with no generic async-sequence
/// machinery on the path of every request: the connection task runs on this channel's event loop (see
/// `EventLoopTaskExecutor`), so it takes a buffered part or writes a response synchronously, and suspends
/// only when nothing is buffered or the socket cannot take more.
///
/// Inbound parts are buffered up to ``highWatermark``; past it the handler stops asking the socket for more
/// (it holds back `read()`), so a client pipelining without end cannot grow the buffer.
final class ConnectionBridgeHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ConnectionInbound
    typealias OutboundIn = ConnectionOutbound
    typealias OutboundOut = ConnectionOutbound

    static let highWatermark = 16
    static let lowWatermark = 4

    /// What a read finds.
    enum Poll {
        case part(ConnectionInbound)
        /// The input ended (EOF, half-close or channel closed).
        case end
        case failed(any Error)
        /// Nothing buffered yet.
        case empty
    }

    private var buffer = CircularBuffer<ConnectionInbound>(initialCapacity: 1)
    private var inputEnded = false
    private var error: (any Error)?
    private var reader: CheckedContinuation<ConnectionInbound?, any Error>?
    private var writabilityWaiters: [CheckedContinuation<Void, any Error>] = []
    private var readHeldBack = false
    private(set) var context: ChannelHandlerContext?
    /// How long a writer may wait for the socket to take more before the connection is closed: a client that
    /// sends requests and never reads the responses must not hold the connection (and its memory) forever.
    /// `nil` after a hijack: the server no longer times the connection out.
    var writeTimeout: TimeAmount?
    private var writeDeadline: Scheduled<Void>?
    /// The timer of a parked read with a timeout, and which read it belongs to.
    private var readDeadline: Scheduled<Void>?
    private var readDeadlineGeneration = 0
    /// Counts a connection closed by the write timeout.
    private let onWriteTimeout: @Sendable () -> Void

    init(writeTimeout: TimeAmount? = nil, onWriteTimeout: @escaping @Sendable () -> Void = {}) {
        self.writeTimeout = writeTimeout
        self.onWriteTimeout = onWriteTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    /// The connection was hijacked: from now on its writes are the hijacker's business, not timed.
    func stopTimingWrites() {
        self.writeTimeout = nil
        self.writeDeadline?.cancel()
        self.writeDeadline = nil
    }

    /// Removed after a hijack handed the connection to protocol handlers: a read it held back goes on first, so
    /// the channel keeps reading.
    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        if self.readHeldBack {
            self.readHeldBack = false
            context.read()
        }
        context.leavePipeline(removalToken: removalToken)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        self.writeDeadline?.cancel()
        self.writeDeadline = nil
        self.endInput()
        self.failWriters(ChannelError.ioOnClosedChannel)
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        if let reader = self.reader {
            self.reader = nil
            if self.readDeadline != nil { self.cancelReadDeadline() }
            HandOver.release()
            reader.resume(returning: part)
        } else {
            self.buffer.append(part)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            self.endInput()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if self.error == nil && !self.inputEnded {
            self.error = error
            if let reader = self.reader {
                self.reader = nil
                self.inputEnded = true
                if self.readDeadline != nil { self.cancelReadDeadline() }
                reader.resume(throwing: error)
            }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.endInput()
        self.failWriters(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }

    private func endInput() {
        self.inputEnded = true
        if let reader = self.reader {
            self.reader = nil
            if self.readDeadline != nil { self.cancelReadDeadline() }
            reader.resume(returning: nil)
        }
    }

    /// Takes the next buffered part, if any, without suspending.
    func poll() -> Poll {
        if let part = self.buffer.popFirst() {
            if self.readHeldBack && self.buffer.count <= Self.lowWatermark, let context {
                self.readHeldBack = false
                context.read()
            }
            return .part(part)
        }
        if let error = self.error {
            self.error = nil
            self.inputEnded = true
            return .failed(error)
        }
        return self.inputEnded ? .end : .empty
    }

    /// Parks `reader` until the next part arrives (or answers it at once if one already has).
    ///
    /// With a `timeout`, a reader still parked when it passes gets `RequestBodyError.timedOut`.
    func waitForPart(_ reader: CheckedContinuation<ConnectionInbound?, any Error>, timeout: TimeAmount? = nil) {
        switch self.poll() {
        case .part(let part):
            HandOver.release()
            reader.resume(returning: part)
        case .end: reader.resume(returning: nil)
        case .failed(let error): reader.resume(throwing: error)
        case .empty:
            precondition(self.reader == nil, "two readers on one connection")
            self.reader = reader
            if self.readHeldBack, let context {
                self.readHeldBack = false
                context.read()
            }
            if let timeout, let context { self.armReadDeadline(timeout, context: context) }
        }
    }

    private func armReadDeadline(_ timeout: TimeAmount, context: ChannelHandlerContext) {
        self.readDeadlineGeneration &+= 1
        let generation = self.readDeadlineGeneration
        let bound = NIOLoopBound(self, eventLoop: context.eventLoop)
        self.readDeadline?.cancel()
        self.readDeadline = context.eventLoop.scheduleTask(in: timeout) {
            let handler = bound.value
            // Only the read it was armed for: a part that arrived meanwhile answered that one.
            guard handler.readDeadlineGeneration == generation, let reader = handler.reader else { return }
            handler.reader = nil
            handler.readDeadline = nil
            reader.resume(throwing: RequestBodyError.timedOut)
        }
    }

    private func cancelReadDeadline() {
        self.readDeadlineGeneration &+= 1
        self.readDeadline?.cancel()
        self.readDeadline = nil
    }

    func read(context: ChannelHandlerContext) {
        if self.buffer.count >= Self.highWatermark {
            self.readHeldBack = true
            return
        }
        context.read()
    }

    // MARK: Outbound

    /// Whether the socket takes writes now without queueing past its high watermark.
    var isWritable: Bool { self.context?.channel.isWritable ?? false }

    /// Writes and flushes `parts`.
    ///
    /// - Throws: `ChannelError.ioOnClosedChannel` when the connection is gone.
    func writeAndFlush(_ parts: some Sequence<ConnectionOutbound>) throws {
        guard let context, context.channel.isActive else { throw ChannelError.ioOnClosedChannel }
        for part in parts {
            context.write(self.wrapOutboundOut(part), promise: nil)
        }
        context.flush()
    }

    /// Parks `writer` until the socket is writable again.
    func waitForWritability(_ writer: CheckedContinuation<Void, any Error>) {
        guard let context, context.channel.isActive else {
            writer.resume(throwing: ChannelError.ioOnClosedChannel)
            return
        }
        if context.channel.isWritable {
            writer.resume()
        } else {
            self.writabilityWaiters.append(writer)
            self.armWriteDeadline(context: context)
        }
    }

    private func armWriteDeadline(context: ChannelHandlerContext) {
        guard let timeout = self.writeTimeout, self.writeDeadline == nil else { return }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.writeDeadline = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = bound.value
            handler.writeDeadline = nil
            guard !handler.writabilityWaiters.isEmpty else { return }
            // The peer has not read for the whole timeout: give up on it (its writers fail as the channel closes).
            handler.onWriteTimeout()
            context.close(promise: nil)
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            self.writeDeadline?.cancel()
            self.writeDeadline = nil
            let waiters = self.writabilityWaiters
            self.writabilityWaiters = []
            for waiter in waiters { waiter.resume() }
        }
        context.fireChannelWritabilityChanged()
    }

    private func failWriters(_ error: any Error) {
        let waiters = self.writabilityWaiters
        self.writabilityWaiters = []
        for waiter in waiters { waiter.resume(throwing: error) }
    }
}

@available(*, unavailable)
extension ConnectionBridgeHandler: Sendable {}
