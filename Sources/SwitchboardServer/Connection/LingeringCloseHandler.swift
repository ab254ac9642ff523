import NIOCore

/// Closes a connection gracefully while its client may still be sending: writes a last response (if any), closes
/// the server's side for writing, then reads and discards until the client closes too, for at most `lingerTime` in
/// all, `idleTimeout` without a read, and `maxDiscardedBytes` (nginx's lingering close: its `lingering_time` and
/// `lingering_timeout`).
///
/// Closing a socket with unread bytes makes the kernel answer with a reset, which can destroy the response before
/// the client reads it: a client that sends its whole request before reading (Python's urllib uploading a body
/// past the limit) would see `ECONNRESET` instead of its `413` or `503`. Added first in the pipeline, it takes every
/// read before the HTTP handlers would. A `lingerTime` of zero closes as soon as the response is written.
final class LingeringCloseHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private let response: ByteBuffer?
    private let lingerTime: TimeAmount
    private let idleTimeout: TimeAmount
    private let maxDiscardedBytes: Int
    private var discarded = 0
    private var lingerTimer: Scheduled<Void>?
    private var readSinceCheck = false
    private var started = false

    /// A client still uploading keeps the connection open up to `lingerTime` (it reads its answer once its write is
    /// done, however slowly a loaded machine moves the bytes); one that sends nothing for `idleTimeout` is closed.
    init(
        response: ByteBuffer? = nil, lingerTime: TimeAmount, idleTimeout: TimeAmount = .seconds(2),
        maxDiscardedBytes: Int = 64 * 1024 * 1024
    ) {
        self.response = response
        self.lingerTime = lingerTime
        self.idleTimeout = idleTimeout
        self.maxDiscardedBytes = maxDiscardedBytes
    }

    /// The whole answer to a connection the server refuses: `503` with `Retry-After`, and `message` as the body.
    static func refusing(with message: String, lingerTime: TimeAmount) -> LingeringCloseHandler {
        let body = message + "\n"
        let response = ByteBuffer(
            string: "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
                + "Content-Length: \(body.utf8.count)\r\nRetry-After: 5\r\nConnection: close\r\n\r\n\(body)")
        return LingeringCloseHandler(response: response, lingerTime: lingerTime)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        // Added to a connection being served: start now. Added while the connection is set up: when it is active.
        if context.channel.isActive { self.start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard !self.started else { return }
        self.started = true
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let lingers = self.lingerTime > .zero
        let written = context.eventLoop.makePromise(of: Void.self)
        if let response = self.response {
            context.writeAndFlush(NIOAny(response), promise: written)
        } else {
            // Whatever the connection queued last (its error response) goes out before the FIN.
            context.flush()
            written.succeed()
        }
        written.futureResult.whenComplete { _ in
            bound.value.close(mode: lingers ? .output : .all, promise: nil)
        }
        if lingers {
            self.scheduleCheck(context: context, deadline: .now() + self.lingerTime)
            // Asked from here, next to the socket: the handlers behind may be holding reads back (a full buffer
            // of a body nobody will read).
            context.read()
        }
    }

    /// Closes at `deadline`, or at a check that finds no read since the one before.
    private func scheduleCheck(context: ChannelHandlerContext, deadline: NIODeadline) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let next = min(deadline, .now() + self.idleTimeout)
        self.readSinceCheck = false
        self.lingerTimer = context.eventLoop.scheduleTask(deadline: next) {
            let (handler, context) = bound.value
            if handler.readSinceCheck, next < deadline {
                handler.scheduleCheck(context: context, deadline: deadline)
            } else {
                context.close(promise: nil)
            }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        self.readSinceCheck = true
        self.discarded += self.unwrapInboundIn(data).readableBytes
        if self.discarded > self.maxDiscardedBytes { context.close(promise: nil) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if self.started { context.read() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event {
            context.close(promise: nil)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.lingerTimer?.cancel()
        self.lingerTimer = nil
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension LingeringCloseHandler: Sendable {}
