import Logging
import NIOCore
import Synchronization

/// What the connection's drain task writes: every request queued since the last drain, in one write.
struct RedisBatch: Sendable {
    var requests: [RedisRequest]
}

/// Pipelines commands on one connection: writes them as they come and matches replies to them in order.
///
/// Redis answers a connection's commands in the order it received them, so the pending promises form a FIFO queue.
/// Pub/sub messages are not replies: on a subscriber connection they go to `onPush` instead. The handler also
/// enforces the command timeout (one timer, armed for the oldest pending command) and sends `PING` when the
/// connection has been idle for the health-check interval, so a half-open connection is noticed and closed.
final class RedisCommandHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisBatch
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        var request: RedisRequest
        var size: Int
        var deadline: NIODeadline
    }

    private let commandTimeout: TimeAmount
    private let healthCheckInterval: TimeAmount
    private let maxPendingCommands: Int
    private let counters: RedisCounters
    /// On a subscriber connection, RESP2 arrays starting with `message`, `pmessage` or `smessage` are pushes.
    private let routesPubSubMessages: Bool
    private let onPush: (@Sendable (RESPValue) -> Void)?
    /// A subscriber connection's messages, channel and payload as read (the decoder slices them), handed over once
    /// per read: a busy connection delivers hundreds at a time.
    private let onMessages: (@Sendable ([(channel: ByteBuffer, payload: ByteBuffer)]) -> Void)?
    /// Messages of the current read, not handed over yet.
    private var messages: [(channel: ByteBuffer, payload: ByteBuffer)] = []
    private let budget: RedisPendingBudget
    /// Told the SHA-1 of a script Redis no longer has (`NOSCRIPT`), so that its next use loads it again.
    private let onNoScript: (@Sendable (String) -> Void)?
    private let logger: Logger

    private var pending = CircularBuffer<Pending>(initialCapacity: 16)
    /// Replies are decoded here rather than by a decoder in front: no value wrapped and unwrapped between handlers
    /// per reply or message.
    private var decoder: RedisInboundDecoder
    /// Bytes of a value not yet complete.
    private var unread: ByteBuffer?
    private var timeoutTask: Scheduled<Void>?
    private var healthCheckTask: RepeatedTask?
    private var lastActivity = NIODeadline.now()
    /// Set once the channel is gone (or failed): later commands fail at once.
    private var closedError: RedisError?

    init(
        configuration: RedisConfiguration,
        routesPubSubMessages: Bool,
        counters: RedisCounters = RedisCounters(),
        budget: RedisPendingBudget? = nil,
        logger: Logger,
        onPush: (@Sendable (RESPValue) -> Void)?,
        onMessages: (@Sendable ([(channel: ByteBuffer, payload: ByteBuffer)]) -> Void)? = nil,
        onNoScript: (@Sendable (String) -> Void)? = nil
    ) {
        self.onNoScript = onNoScript
        self.counters = counters
        self.decoder = RedisInboundDecoder(limits: configuration.limits, recognizesMessages: routesPubSubMessages)
        self.budget = budget ?? RedisPendingBudget(maxBytes: configuration.maxPendingBytes)
        self.onMessages = onMessages
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

    /// Takes a batch: each request's reply is this handler's to complete from here on (the write promise succeeds
    /// at once: a failed write closes the connection, which fails what is pending).
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let batch = self.unwrapOutboundIn(data)
        promise?.succeed(())
        let now = NIODeadline.now()
        self.lastActivity = now
        var buffer = context.channel.allocator.buffer(capacity: batch.requests.reduce(0) { $0 + $1.size })
        for request in batch.requests {
            let size = request.size
            if let closedError = self.closedError {
                self.budget.release(size)
                request.fail(closedError)
                continue
            }
            guard self.pending.count < self.maxPendingCommands else {
                self.counters.refusedForBudget.wrappingAdd(1, ordering: .relaxed)
                self.budget.release(size)
                request.fail(
                    RedisError(
                        .tooManyPendingCommands, "\(self.maxPendingCommands) commands are already waiting for replies"))
                continue
            }
            request.encode(into: &buffer)
            if case .withoutReply = request {
                self.budget.release(size)
                continue
            }
            self.pending.append(Pending(request: request, size: size, deadline: now + self.commandTimeout))
        }
        if self.timeoutTask == nil, !self.pending.isEmpty {
            self.armTimeout(context: context, at: now + self.commandTimeout)
        }
        if buffer.readableBytes > 0 { context.write(self.wrapOutboundOut(buffer), promise: nil) }
    }

    // MARK: Replies in

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        self.lastActivity = .now()
        if var unread = self.unread {
            // The rest of a value: appended (a copy of what was left, and the new bytes).
            self.unread = nil
            unread.writeBuffer(&bytes)
            bytes = unread
        }
        do {
            while self.closedError == nil, let inbound = try self.decoder.decode(buffer: &bytes) {
                self.handle(inbound, context: context)
            }
        } catch {
            self.errorCaught(context: context, error: error)
            return
        }
        if bytes.readableBytes > 0 { self.unread = bytes }
    }

    private func handle(_ inbound: RedisInbound, context: ChannelHandlerContext) {
        let value: RESPValue
        switch inbound {
        case .message(let channel, let payload):
            // Not counted as activity (a clock read per message is not free): a health check PING now and then on
            // a busy subscriber connection costs less.
            self.messages.append((channel, payload))
            return
        case .integer(let number):
            guard let next = self.nextPending(context: context) else { return }
            switch next.request {
            case .command(_, let promise): promise.succeed(.integer(number))
            case .publish(_, _, _, .none): break
            case .publish(_, _, _, .receivers(let promise)): promise.succeed(Int(number))
            case .publish(_, _, _, .done(let promise)): promise.succeed(())
            case .script(_, let promise, _): promise?.succeed(())
            case .withoutReply: break
            }
            return
        case .value(let decoded):
            value = decoded
        }
        // What was read before this value goes first: a subscription's confirmation follows the messages before it.
        self.handOverMessages()
        if self.isPush(value) {
            self.onPush?(value)
            return
        }
        guard let next = self.nextPending(context: context) else { return }
        switch (value, next.request) {
        case (.error(let message), .script(let call, let promise, withSource: false))
        where message.hasPrefix("NOSCRIPT"):
            // Someone flushed the script cache (SCRIPT FLUSH): this call again with the source, at the end of the
            // pipeline, and the script loaded again before its next use.
            self.onNoScript?(call.script.sha1)
            let again = RedisRequest.script(call, promise, withSource: true)
            self.budget.forceAdmit(again.size)
            self.write(context: context, data: NIOAny(RedisBatch(requests: [again])), promise: nil)
            context.flush()
        case (.error(let message), _):
            next.request.fail(RedisError(.serverError, message))
        case (_, .command(_, let promise)):
            promise.succeed(value)
        case (_, .publish(_, _, _, let reply)):
            reply.fail(RedisError(.unexpectedReply, "PUBLISH answered \(value)"))
        case (_, .script(_, let promise, _)):
            promise?.succeed(())
        case (_, .withoutReply):
            break
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        self.handOverMessages()
        context.fireChannelReadComplete()
    }

    private func handOverMessages() {
        guard !self.messages.isEmpty else { return }
        let messages = self.messages
        self.messages.removeAll(keepingCapacity: true)
        self.onMessages?(messages)
    }

    /// The oldest pending request, counted out of the budget; `nil` (and the connection closed) if there is none.
    private func nextPending(context: ChannelHandlerContext) -> Pending? {
        guard let next = self.pending.popFirst() else {
            self.closeWithError(
                RedisError(.unexpectedReply, "a reply arrived with no command waiting for it"),
                context: context
            )
            return nil
        }
        self.budget.release(next.size)
        return next
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
                // Sent unasked when a slot moves (and to our own SUNSUBSCRIBE, which awaits no reply).
                || kind.readableBytesView.elementsEqual("sunsubscribe".utf8)
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
        self.handOverMessages()
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
        let ping = RedisRequest.command(RESPCommand("PING"), promise)
        _ = self.budget.admit(ping.size)
        self.write(context: context, data: NIOAny(RedisBatch(requests: [ping])), promise: nil)
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
            self.budget.release(next.size)
            next.request.fail(error)
        }
    }
}
