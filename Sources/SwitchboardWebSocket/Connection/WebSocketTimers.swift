import Logging
import NIOCore

/// The timing state of one WebSocket connection. Keepalive and idle deadlines are plain values checked by the event
/// loop's ``KeepaliveScheduler``; only the close-handshake timeout, which exists briefly, is a scheduled task.
struct WebSocketTimers {
    var nextPing: NIODeadline?
    var pongDeadline: NIODeadline?
    var lastTraffic: NIODeadline?
    private var closeDeadline: Scheduled<Void>?

    mutating func start(handler: WebSocketHandler, context: ChannelHandlerContext) {
        let configuration = handler.configuration
        let now = context.eventLoop.now
        if let interval = configuration.pingInterval { self.nextPing = now + interval }
        if configuration.idleTimeout != nil { self.lastTraffic = now }
        let intervals = [
            configuration.pingInterval, configuration.idleTimeout,
            configuration.pingInterval.map { _ in configuration.pongTimeout },
        ]
        .compactMap { $0 }
        if let finest = intervals.min() {
            KeepaliveScheduler.on(context.eventLoop).register(handler, finestInterval: finest)
        }
    }

    mutating func sawTraffic(context: ChannelHandlerContext) {
        if self.lastTraffic != nil { self.lastTraffic = context.eventLoop.now }
    }

    mutating func sawPong() {
        self.pongDeadline = nil
    }

    mutating func armCloseTimeout(_ timeout: TimeAmount, handler: WebSocketHandler, context: ChannelHandlerContext) {
        guard self.closeDeadline == nil else { return }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.closeDeadline = context.eventLoop.scheduleTask(in: timeout) {
            // The peer did not answer our close frame in time: close TCP anyway.
            bound.value.close(promise: nil)
        }
    }

    mutating func cancel(handler: WebSocketHandler, eventLoop: any EventLoop) {
        if self.nextPing != nil || self.lastTraffic != nil {
            KeepaliveScheduler.on(eventLoop).unregister(handler)
        }
        self.closeDeadline?.cancel()
        self.closeDeadline = nil
        self.nextPing = nil
        self.pongDeadline = nil
        self.lastTraffic = nil
    }
}

extension WebSocketHandler {
    /// Called by the loop's ``KeepaliveScheduler`` about once a second.
    func keepaliveTick(now: NIODeadline) {
        guard self.closing.isOpen, let context else { return }
        if let deadline = self.timers.pongDeadline, now >= deadline {
            self.logger.debug("websocket keepalive: no pong in time, closing")
            self.configuration.counters?.keepaliveTimedOut()
            self.abort(code: .goingAway, reason: "keepalive timeout", context: context)
            return
        }
        if let timeout = self.configuration.idleTimeout, let last = self.timers.lastTraffic, now - last >= timeout {
            self.logger.debug("websocket idle timeout, closing")
            self.configuration.counters?.idleTimedOut()
            self.close(code: .goingAway, reason: "idle timeout")
            return
        }
        if let interval = self.configuration.pingInterval, let next = self.timers.nextPing, now >= next,
            self.timers.pongDeadline == nil
        {
            try? self.ping()
            self.timers.nextPing = now + interval
            self.timers.pongDeadline = now + self.configuration.pongTimeout
        }
    }
}
