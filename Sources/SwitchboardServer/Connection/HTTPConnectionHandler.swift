import Logging
import NIOCore
import NIOHTTP1

/// Sits between the HTTP decoder and the connection's bridge to its async loop (`ConnectionBridgeHandler`) while HTTP is spoken: converts
/// decoded parts, runs the idle and head-read timeouts, and closes on graceful shutdown when idle.
///
/// Removed from the pipeline at a hijack; after that the server never times out the connection.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = ConnectionInbound
    typealias OutboundIn = ConnectionOutbound
    typealias OutboundOut = ByteBuffer

    /// The answer to a client too slow to send a request head.
    static let requestTimeoutResponse = ByteBuffer(
        string: "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )

    private var stateMachine = HTTPConnectionStateMachine()
    private let idleTimeout: TimeAmount
    private let headReadTimeout: TimeAmount
    private let logger: Logger

    /// When the armed timeout expires; `nil` when none is armed.
    private var deadline: NIODeadline?
    /// The scheduled wake-up. Moving the deadline later does not reschedule: the wake-up re-arms itself for
    /// the new deadline, so a busy keep-alive connection costs no timer work per request.
    private var wakeUp: Scheduled<Void>?
    private var wakeUpTime: NIODeadline?

    /// The gate in front of the decoder; told to hold the half-close after an Upgrade or CONNECT head.
    private let halfCloseGate: HalfCloseGate

    /// Counts a request answered 408 for a slow head.
    private let onSlowHead: @Sendable () -> Void

    init(
        idleTimeout: TimeAmount, headReadTimeout: TimeAmount, halfCloseGate: HalfCloseGate, logger: Logger,
        onSlowHead: @escaping @Sendable () -> Void = {}
    ) {
        self.onSlowHead = onSlowHead
        self.halfCloseGate = halfCloseGate
        self.idleTimeout = idleTimeout
        self.headReadTimeout = headReadTimeout
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.apply(.armIdleTimer, context: context)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.deadline = nil
        self.wakeUp?.cancel()
        self.wakeUp = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.apply(self.stateMachine.receivedHead(), context: context)
            if head.isUpgradeOrConnect { self.halfCloseGate.isHolding = true }
            context.fireChannelRead(self.wrapInboundOut(.head(head)))
        case .body(let body):
            context.fireChannelRead(self.wrapInboundOut(.body(body)))
        case .end:
            context.fireChannelRead(self.wrapInboundOut(.end))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.apply(self.stateMachine.readCompleted(), context: context)
        context.fireChannelReadComplete()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let part = self.unwrapOutboundIn(data)
        context.write(self.wrapOutboundOut(part.buffer), promise: promise)
        if case .responseEnd = part {
            self.apply(self.stateMachine.responseEnded(), context: context)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            self.logger.debug("graceful shutdown: closing the connection once idle")
            self.apply(self.stateMachine.quiesce(), context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func apply(_ action: HTTPConnectionStateMachine.TimerAction, context: ChannelHandlerContext) {
        switch action {
        case .none:
            break
        case .armIdleTimer:
            self.arm(context.eventLoop.now + self.idleTimeout, context: context)
        case .armHeadTimer:
            self.arm(context.eventLoop.now + self.headReadTimeout, context: context)
        case .cancelTimer:
            self.deadline = nil
        case .close:
            self.deadline = nil
            // Let writes already queued (the last response) reach the socket before the FIN.
            context.flush()
            context.close(promise: nil)
        }
    }

    private func arm(_ deadline: NIODeadline, context: ChannelHandlerContext) {
        self.deadline = deadline
        if let wakeUpTime, wakeUpTime <= deadline { return }
        self.schedule(at: deadline, context: context)
    }

    private func schedule(at time: NIODeadline, context: ChannelHandlerContext) {
        self.wakeUp?.cancel()
        self.wakeUpTime = time
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.wakeUp = context.eventLoop.scheduleTask(deadline: time) {
            let (handler, context) = loopBound.value
            handler.wokeUp(context: context)
        }
    }

    private func wokeUp(context: ChannelHandlerContext) {
        self.wakeUp = nil
        self.wakeUpTime = nil
        guard let deadline = self.deadline else { return }
        if deadline > context.eventLoop.now {
            self.schedule(at: deadline, context: context)
            return
        }
        self.deadline = nil
        switch self.stateMachine.timerFired() {
        case .none:
            break
        case .closeIdle:
            self.logger.debug("idle timeout: closing the connection")
            context.close(promise: nil)
        case .closeSlowHead:
            self.logger.debug("head-read timeout: closing the connection with 408")
            self.onSlowHead()
            let boundContext = NIOLoopBound(context, eventLoop: context.eventLoop)
            context.writeAndFlush(self.wrapOutboundOut(Self.requestTimeoutResponse)).whenComplete { _ in
                boundContext.value.close(promise: nil)
            }
        }
    }
}

@available(*, unavailable)
extension HTTPConnectionHandler: Sendable {}

extension HTTPRequestHead {
    /// Whether the decoder stops parsing after this request: an Upgrade (a `Connection: upgrade` token and an
    /// `Upgrade` field) or a CONNECT. The bytes after it belong to whoever takes over the connection.
    var isUpgradeOrConnect: Bool {
        if self.method == .CONNECT { return true }
        guard self.headers.contains(name: "upgrade") else { return false }
        return self.headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
    }
}
