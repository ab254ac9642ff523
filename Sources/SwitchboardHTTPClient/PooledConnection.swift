import NIOCore
import NIOHTTP1
import SwitchboardLocks

/// One keep-alive connection of a host's pool: one request at a time.
final class PooledConnection: Sendable {
    /// A response and whether the connection may carry another request.
    struct Exchanged: Sendable {
        var response: HTTPClient.Response
        var keepAlive: Bool
    }

    let channel: any Channel
    private let handler: NIOLoopBound<ResponseHandler>
    /// Closes the connection when it has idled too long; cancelled when it is taken again.
    private let idleTimer = Locked<Scheduled<Void>?>(nil)

    private init(channel: any Channel, handler: NIOLoopBound<ResponseHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// The pool's wrapper of a connected channel (its `ResponseHandler` added by the pool's initializer).
    static func make(_ channel: any Channel) async throws -> PooledConnection {
        try await channel.eventLoop.submit {
            let handler = try channel.pipeline.syncOperations.handler(type: ResponseHandler.self)
            return PooledConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
        }.value()
    }

    var isActive: Bool { self.channel.isActive }

    /// Takes the connection from the idle list for a request; `false` if it closed meanwhile.
    func take() -> Bool {
        self.idleTimer.withLock { timer in
            timer?.cancel()
            timer = nil
        }
        return self.channel.isActive
    }

    /// Puts the connection aside: it closes after `timeout` unless taken, and tells `onClose` if it closes while idle.
    func idle(for timeout: TimeAmount, onClose: @escaping @Sendable (PooledConnection) -> Void) {
        let channel = self.channel
        let timer = channel.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
        self.idleTimer.withLock { $0 = timer }
        let handler = self.handler
        channel.eventLoop.execute {
            handler.value.onIdleClose = { [weak self] in
                guard let self else { return }
                onClose(self)
            }
        }
    }

    /// Sends `request` and waits for its whole response, until `until`; past it the connection is closed (its answer
    /// could still come) and the request fails.
    func exchange(
        _ request: HTTPClientRequest, until: NIODeadline, deadline: TimeAmount
    ) async throws -> Exchanged {
        let channel = self.channel
        let handler = self.handler
        let answered = channel.eventLoop.makePromise(of: Exchanged.self)
        channel.eventLoop.execute {
            handler.value.onIdleClose = nil
            handler.value.expect(answered)
            channel.write(HTTPClientRequestPart.head(request.head), promise: nil)
            if let body = request.body { channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { answered.fail($0) }
        }
        let timer = channel.eventLoop.scheduleTask(deadline: until) {
            answered.fail(HTTPClientError.timeout(deadline))
            channel.close(promise: nil)
        }
        defer { timer.cancel() }
        return try await answered.futureResult.value()
    }

    /// Closes the connection; the future completes once its descriptor is closed.
    func close() -> EventLoopFuture<Void> {
        self.idleTimer.withLock { $0?.cancel() }
        self.channel.close(promise: nil)
        return self.channel.closeFuture
    }
}

/// Reads one response at a time into the waiting request's promise, its body up to a limit.
final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let maxBodyBytes: Int
    private var answer: EventLoopPromise<PooledConnection.Exchanged>?
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()
    /// Told when the connection closes with no request on it (the pool drops it from its idle list).
    var onIdleClose: (() -> Void)?

    init(maxBodyBytes: Int) {
        self.maxBodyBytes = maxBodyBytes
    }

    func expect(_ answer: EventLoopPromise<PooledConnection.Exchanged>) {
        self.answer = answer
        self.head = nil
        self.body.clear()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
        case .body(var part):
            guard self.body.readableBytes + part.readableBytes <= self.maxBodyBytes else {
                self.answer?.fail(HTTPClientError("a response body over \(self.maxBodyBytes) bytes"))
                self.answer = nil
                context.close(promise: nil)
                return
            }
            self.body.writeBuffer(&part)
        case .end:
            guard let head = self.head, let answer = self.answer else { return }
            self.answer = nil
            let response = HTTPClient.Response(status: Int(head.status.code), headers: head.headers, body: self.body)
            answer.succeed(.init(response: response, keepAlive: head.isKeepAlive))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.answer?.fail(error)
        self.answer = nil
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let answer = self.answer {
            self.answer = nil
            answer.fail(HTTPClientError("the connection closed before a whole response"))
        } else {
            self.onIdleClose?()
            self.onIdleClose = nil
        }
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension ResponseHandler: Sendable {}
