import Logging
import NIOCore

/// The timers of one WebSocket connection: keepalive pings and their pong deadline, the idle timeout, and the
/// close-handshake timeout. Scheduled on the connection's event loop; all cancelled when the connection ends.
struct WebSocketTimers {
    private var pingTask: RepeatedTask?
    private var pongDeadline: Scheduled<Void>?
    private var idleCheck: Scheduled<Void>?
    private var closeDeadline: Scheduled<Void>?
    private var lastTraffic: NIODeadline?

    mutating func start(handler: WebSocketHandler, context: ChannelHandlerContext) {
        let bound = NIOLoopBound((handler, context), eventLoop: context.eventLoop)
        if let interval = handler.configuration.pingInterval {
            self.pingTask = context.eventLoop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
                let (handler, context) = bound.value
                handler.sendKeepalivePing(context: context)
            }
        }
        if let idle = handler.configuration.idleTimeout {
            self.lastTraffic = context.eventLoop.now
            self.scheduleIdleCheck(after: idle, bound: bound)
        }
    }

    mutating func sawTraffic(context: ChannelHandlerContext) {
        if self.lastTraffic != nil { self.lastTraffic = context.eventLoop.now }
    }

    mutating func sawPong() {
        self.pongDeadline?.cancel()
        self.pongDeadline = nil
    }

    /// After a keepalive ping: the pong must come within `timeout`.
    mutating func armPongDeadline(_ timeout: TimeAmount, handler: WebSocketHandler, context: ChannelHandlerContext) {
        guard self.pongDeadline == nil else { return }
        let bound = NIOLoopBound((handler, context), eventLoop: context.eventLoop)
        self.pongDeadline = context.eventLoop.scheduleTask(in: timeout) {
            let (handler, context) = bound.value
            handler.keepaliveTimedOut(context: context)
        }
    }

    mutating func armCloseTimeout(_ timeout: TimeAmount, handler: WebSocketHandler, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.closeDeadline = context.eventLoop.scheduleTask(in: timeout) {
            // The peer did not answer our close frame in time: close TCP anyway.
            bound.value.close(promise: nil)
        }
    }

    private mutating func scheduleIdleCheck(
        after delay: TimeAmount, bound: NIOLoopBound<(WebSocketHandler, ChannelHandlerContext)>
    ) {
        self.idleCheck = bound.value.1.eventLoop.scheduleTask(in: delay) {
            let (handler, context) = bound.value
            handler.checkIdle(context: context)
        }
    }

    /// When the idle check fires: whether the connection has been idle for `timeout`; if not, checks again later.
    mutating func isIdle(
        now: NIODeadline, timeout: TimeAmount, handler: WebSocketHandler, context: ChannelHandlerContext
    ) -> Bool {
        guard let last = self.lastTraffic else { return false }
        let idleSince = now - last
        if idleSince >= timeout { return true }
        self.scheduleIdleCheck(
            after: timeout - idleSince, bound: NIOLoopBound((handler, context), eventLoop: context.eventLoop))
        return false
    }

    mutating func cancel() {
        self.pingTask?.cancel()
        self.pongDeadline?.cancel()
        self.idleCheck?.cancel()
        self.closeDeadline?.cancel()
        self.pingTask = nil
        self.pongDeadline = nil
        self.idleCheck = nil
        self.closeDeadline = nil
        self.lastTraffic = nil
    }
}

extension WebSocketHandler {
    func sendKeepalivePing(context: ChannelHandlerContext) {
        guard self.state == .open else { return }
        try? self.ping()
        self.armPongDeadline(context: context)
    }

    func keepaliveTimedOut(context: ChannelHandlerContext) {
        self.logger.debug("websocket keepalive: no pong in time, closing")
        self.abort(code: .goingAway, reason: "keepalive timeout", context: context)
    }

    func checkIdle(context: ChannelHandlerContext) {
        guard let timeout = self.configuration.idleTimeout, self.state == .open else { return }
        if self.idleExpired(timeout: timeout, context: context) {
            self.logger.debug("websocket idle timeout, closing")
            self.close(code: .goingAway, reason: "idle timeout")
        }
    }
}
