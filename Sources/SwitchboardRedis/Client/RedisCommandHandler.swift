import Logging
import NIOCore
import Synchronization

/// A command and the promise of its reply.
struct RedisRequest: Sendable {
    var command: RESPCommand
    var promise: EventLoopPromise<RESPValue>
}

/// Pipelines commands on one connection: writes them as they come and matches replies to them in order.
///
/// Redis answers a connection's commands in the order it received them, so the pending promises form a FIFO queue.
/// Pub/sub messages are not replies: on a subscriber connection they go to `onPush` instead. The handler also
/// enforces the command timeout (one timer, armed for the oldest pending command) and sends `PING` when the
/// connection has been idle for the health-check interval, so a half-open connection is noticed and closed.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = RESPValue
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var promise: EventLoopPromise<RESPValue>
        var deadline: NIODeadline
    }

    private let commandTimeout: TimeAmount
    private let healthCheckInterval: TimeAmount
    private let maxPendingCommands: Int
    private let counters: RedisCounters
    /// On a subscriber connection, RESP2 arrays starting with `message`, `pmessage` or `smessage` are pushes.
    private let routesPubSubMessages: Bool
    private let onPush: (@Sendable (RESPValue) -> Void)?
    private let logger: Logger

    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    private var timeoutTask: Scheduled<Void>?
    private var healthCheckTask: RepeatedTask?
    private var lastActivity = NIODeadline.now()
    /// Set once the channel is gone (or failed): later commands fail at once.
    private var closedError: RedisError?

    init(
        configuration: RedisConfiguration,
        routesPubSubMessages: Bool,
        counters: RedisCounters = RedisCounters(),
        logger: Logger,
        onPush: (@Sendable (RESPValue) -> Void)?
    ) {
        self.counters = counters
        self.commandTimeout = TimeAmount(configuration.commandTimeout)
        self.healthCheckInterval = TimeAmount(configuration.healthCheckInterval)
        self.maxPendingCommands = configuration.maxPendingCommands
        self.routesPubSubMessages = routesPubSubMessages
        self.onPush = onPush
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { self.startHealthChecks(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.startHealthChecks(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.fail(with: RedisError(.connectionClosed, "the connection's handler was removed"))
    }

    // MARK: Commands out

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = self.unwrapOutboundIn(data)
        if let closedError = self.closedError {
            request.promise.fail(closedError)
            promise?.fail(closedError)
            return
        }
        guard self.pending.count < self.maxPendingCommands else {
            self.counters.refusedForBudget.wrappingAdd(1, ordering: .relaxed)
            let error = RedisError(
                .tooManyPendingCommands,
                "\(self.maxPendingCommands) commands are already waiting for replies"
            )
            request.promise.fail(error)
            promise?.fail(error)
            return
        }
        let now = NIODeadline.now()
        self.lastActivity = now
        self.pending.append(Pending(promise: request.promise, deadline: now + self.commandTimeout))
        if self.timeoutTask == nil { self.armTimeout(context: context, at: now + self.commandTimeout) }
        var buffer = context.channel.allocator.buffer(capacity: 64)
        request.command.encode(into: &buffer)
        context.write(self.wrapOutboundOut(buffer), promise: promise)
    }

    // MARK: Replies in

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = self.unwrapInboundIn(data)
        self.lastActivity = .now()
        if self.isPush(value) {
            self.onPush?(value)
            return
        }
        guard let next = self.pending.popFirst() else {
            self.closeWithError(
                RedisError(.unexpectedReply, "a reply arrived with no command waiting for it"),
                context: context
            )
            return
        }
        if case .error(let message) = value {
            next.promise.fail(RedisError(.serverError, message))
        } else {
            next.promise.succeed(value)
        }
    }

    private func isPush(_ value: RESPValue) -> Bool {
        switch value {
        case .push:
            return true
        case .array(let elements?) where self.routesPubSubMessages:
            guard let kind = elements.first?.bytes else { return false }
            return kind.readableBytesView.elementsEqual("message".utf8)
                || kind.readableBytesView.elementsEqual("pmessage".utf8)
                || kind.readableBytesView.elementsEqual("smessage".utf8)
        default:
            return false
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let redisError =
            switch error {
            case let error as RESPDecodingError: RedisError(.protocolError, error.description)
            case let error as RedisError: error
            default: RedisError(.connectionClosed, "\(error)")
            }
        self.closeWithError(redisError, context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.fail(with: RedisError(.connectionClosed, "the server closed the connection"))
        context.fireChannelInactive()
    }

    // MARK: Timers

    private func armTimeout(context: ChannelHandlerContext, at deadline: NIODeadline) {
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.timeoutTask = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = loopBound.value
            handler.timeoutFired(context: context)
        }
    }

    private func timeoutFired(context: ChannelHandlerContext) {
        self.timeoutTask = nil
        guard let oldest = self.pending.first else { return }
        if oldest.deadline <= .now() {
            self.counters.timeouts.wrappingAdd(1, ordering: .relaxed)
            self.logger.warning(
                "Redis reply overdue: closing the connection",
                metadata: ["timeout": "\(self.commandTimeout)", "pending": "\(self.pending.count)"]
            )
            self.closeWithError(
                RedisError(.timeout, "no reply within \(self.commandTimeout); the connection was closed"),
                context: context
            )
        } else {
            self.armTimeout(context: context, at: oldest.deadline)
        }
    }

    private func startHealthChecks(context: ChannelHandlerContext) {
        guard self.healthCheckTask == nil, self.healthCheckInterval > .zero else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.healthCheckTask = context.eventLoop.scheduleRepeatedTask(
            initialDelay: self.healthCheckInterval,
            delay: self.healthCheckInterval
        ) { _ in
            let (handler, context) = loopBound.value
            handler.healthCheck(context: context)
        }
    }

    /// Sends `PING` on an idle connection; an unanswered one trips the command timeout, which closes it.
    private func healthCheck(context: ChannelHandlerContext) {
        guard self.closedError == nil, self.pending.isEmpty,
            NIODeadline.now() - self.lastActivity >= self.healthCheckInterval
        else { return }
        let promise = context.eventLoop.makePromise(of: RESPValue.self)
        promise.futureResult.whenFailure { [logger] error in
            logger.debug("Redis health check failed", metadata: ["error": "\(error)"])
        }
        let ping = RedisRequest(command: RESPCommand("PING"), promise: promise)
        self.write(context: context, data: NIOAny(ping), promise: nil)
        context.flush()
    }

    // MARK: Failure

    private func closeWithError(_ error: RedisError, context: ChannelHandlerContext) {
        self.fail(with: error)
        context.close(promise: nil)
    }

    private func fail(with error: RedisError) {
        if self.closedError == nil { self.closedError = error }
        self.timeoutTask?.cancel()
        self.timeoutTask = nil
        self.healthCheckTask?.cancel()
        self.healthCheckTask = nil
        while let next = self.pending.popFirst() {
            next.promise.fail(error)
        }
    }
}
