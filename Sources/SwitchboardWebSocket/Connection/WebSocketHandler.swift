import Logging
import NIOCore

/// The WebSocket protocol engine for one connection: parses frames, assembles and validates messages, answers
/// pings, runs the close handshake, enforces every limit, and writes what the app sends.
///
/// It sits at the front of a hijacked connection's pipeline and consumes all bytes. Callbacks run on the
/// connection's event loop.
final class WebSocketHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let configuration: WebSocketConfiguration
    let deflate: NegotiatedDeflate?
    let logger: Logger
    /// The closing handshake; every transition away from open also stops off-loop sends (``WebSocket/isOpen``).
    var closing = CloseHandshake() {
        didSet { if !self.closing.isOpen { self.socket?.markNotOpen() } }
    }
    private var parser: FrameParser
    /// Bytes of a frame that has not arrived whole.
    private var pending: ByteBuffer?
    /// Data frames into messages: fragments, UTF-8, inflating, the size cap.
    private var assembler: MessageAssembler
    var deflater: Deflater?
    private(set) var context: ChannelHandlerContext?
    /// What the app asked of the socket in its set-up closure, which runs just before the handler joins the
    /// pipeline: done in order once it has (`nil` from then on). A fan-out member attached there replays what
    /// was published during the handshake, and a gap it held closes the socket: none of it may be lost.
    var beforeAdded: [(WebSocketHandler) -> Void]? = []
    /// The channel's writability, as of the last event.
    var isWritable = true
    var timers = WebSocketTimers()
    private var readsPaused = false
    private var readPending = false
    /// Set by ``drop(code:reason:)``: nothing more is read or parsed from the peer, whatever asks to resume.
    private(set) var readsStopped = false

    var onOpen: ((WebSocket) -> Void)?
    var onMessage: ((WebSocket, WebSocketMessage) -> Void)?
    var onClose: ((WebSocket, WebSocketCloseCode, String) -> Void)?
    var onError: ((WebSocket, any Error) -> Void)?
    /// Set once the `WebSocket` handle exists; the handle and the handler refer to each other until close.
    var socket: WebSocket?
    /// Told once, after `onClose`, when the connection ends (the fan-out engine's memberships).
    var closeObservers: [any WebSocketCloseObserver] = []
    /// Whether ``finish(code:reason:)`` ran: callbacks and observers were told (or will be, on the next tick).
    private(set) var isFinished = false
    /// How many app-initiated operations (send, ping, close) are running: a write that fails inside one can close
    /// the channel synchronously, and the close callbacks must not run inside the app's own call.
    private var appOperations = 0

    init(configuration: WebSocketConfiguration, deflate: NegotiatedDeflate?, logger: Logger) {
        self.configuration = configuration
        self.deflate = deflate
        self.logger = logger
        self.parser = FrameParser(maxFrameSize: configuration.maxFrameSize, allowsRSV1: deflate != nil)
        self.assembler = MessageAssembler(maxMessageSize: configuration.maxMessageSize, deflate: deflate)
    }

    // MARK: Lifecycle

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        self.isWritable = context.channel.isWritable
        self.timers.start(handler: self, context: context)
        self.configuration.counters?.socketOpened()
        let pending = self.beforeAdded ?? []
        self.beforeAdded = nil
        for operation in pending { operation(self) }
        if let socket { self.onOpen?(socket) }
    }

    /// The handler has not joined the pipeline yet: operations are kept (``beforeAdded``). Checked before a
    /// closure is made, so the sends of a running socket allocate nothing for it.
    var isBeforeAdded: Bool { self.context == nil && self.beforeAdded != nil }

    /// Kept from writability events: cheaper than asking the channel on every send of a fan-out.
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        self.isWritable = context.channel.isWritable
        context.fireChannelWritabilityChanged()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        _ = self.closing.connectionEnded()
        self.finish(code: .abnormalClosure, reason: "", eventLoop: context.eventLoop)
        self.context = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        let (code, reason) = self.closing.connectionEnded()
        self.finish(code: code, reason: reason, eventLoop: context.eventLoop)
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is ChannelShouldQuiesceEvent {
            self.close(code: .goingAway, reason: "server shutting down")
            return
        }
        if let event = event as? ChannelEvent, event == .inputClosed {
            // The peer will send nothing more: after a close handshake that is the end; without one, too.
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.logger.debug("websocket connection error", metadata: ["switchboard.error": "\(error)"])
        if let socket { self.onError?(socket, error) }
        context.close(promise: nil)
    }

    /// Runs the close callback and the close observers once and forgets the handle, breaking the reference cycle.
    ///
    /// Never inside an app's own call: when the connection ends during a send (the write failed, or the peer was
    /// dropped as a slow consumer), the callbacks run on the next tick of the loop, after that call returned, so an
    /// app never sees `onClose` in the middle of its own `send`.
    private func finish(code: WebSocketCloseCode, reason: String, eventLoop: any EventLoop) {
        guard !self.isFinished else { return }
        self.isFinished = true
        self.configuration.counters?.closed(code: code)
        if let context { self.timers.cancel(handler: self, eventLoop: context.eventLoop) }
        self.assembler.reset()
        self.deflater = nil
        self.pending = nil
        self.socket?.markNotOpen()
        guard self.appOperations == 0 else {
            let handler = NIOLoopBound(self, eventLoop: eventLoop)
            eventLoop.execute { handler.value.notifyClosed(code: code, reason: reason) }
            return
        }
        self.notifyClosed(code: code, reason: reason)
    }

    private func notifyClosed(code: WebSocketCloseCode, reason: String) {
        if let socket {
            self.socket = nil
            self.onClose?(socket, code, reason)
            socket.finishMessages(code: code, reason: reason)
        }
        let observers = self.closeObservers
        self.closeObservers = []
        for observer in observers { observer.webSocketDidClose() }
        self.onOpen = nil
        self.onMessage = nil
        self.onClose = nil
        self.onError = nil
    }

    /// Runs an operation the app started; the connection's end, if it happens inside, is reported after it.
    func appOperation<Result>(_ body: () throws -> Result) rethrows -> Result {
        self.appOperations += 1
        defer { self.appOperations -= 1 }
        return try body()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        guard self.closing.readsFrames, !self.readsStopped else { return }
        self.timers.sawTraffic(context: context)
        if var pending = self.pending, pending.readableBytes > 0 {
            self.pending = nil  // keep `pending` uniquely referenced while appending
            pending.writeBuffer(&bytes)
            bytes = pending
        }
        do {
            while self.closing.readsFrames, !self.readsStopped, let event = try self.parser.next(from: &bytes) {
                try self.handle(event, context: context)
            }
        } catch let violation as WebSocketProtocolViolation {
            self.fail(violation)
            return
        } catch {
            self.fail(WebSocketProtocolViolation(code: .internalError, reason: "\(error)"))
            return
        }
        if bytes.readableBytes > 0 {
            bytes.discardReadBytes()
            self.pending = bytes
        }
    }

    private func handle(_ event: FrameParser.Event, context: ChannelHandlerContext) throws {
        switch event {
        case .control(let header, let payload):
            try self.handleControl(header.opcode, payload: payload, context: context)
        case .dataHeader(let header):
            try self.assembler.startFrame(header)
        case .data(let piece, let endOfFrame):
            guard let message = try self.assembler.receive(piece, endOfFrame: endOfFrame) else { return }
            // After our close frame the peer's remaining data is read (to reach its close frame) but not delivered.
            guard self.closing.isOpen, let socket else { return }
            self.configuration.counters?.received(bytes: message.data.readableBytes)
            socket.deliver(message, handler: self)
        }
    }

    private func handleControl(_ opcode: WebSocketOpcode, payload: ByteBuffer, context: ChannelHandlerContext) throws {
        switch opcode {
        case .ping:
            if self.closing.isOpen {
                context.writeAndFlush(
                    self.wrapOutboundOut(
                        FrameWriter.frame(opcode: .pong, payload: payload, allocator: context.channel.allocator)),
                    promise: nil)
            }
        case .pong:
            self.timers.sawPong()
        case .close:
            try self.receiveClose(payload, context: context)
        default:
            break
        }
    }

    private func receiveClose(_ payload: ByteBuffer, context: ChannelHandlerContext) throws(WebSocketProtocolViolation)
    {
        var payload = payload
        var code: WebSocketCloseCode?
        var reason = ""
        if payload.readableBytes == 1 { throw .init(code: .protocolError, reason: "close frame with a 1-byte payload") }
        if let raw = payload.readInteger(as: UInt16.self) {
            let received = WebSocketCloseCode(rawValue: raw)
            guard received.isValidOnTheWire else {
                throw .init(code: .protocolError, reason: "invalid close code \(raw)")
            }
            var validator = UTF8Validator()
            let valid = payload.withUnsafeReadableBytes { validator.validate($0) } && validator.isComplete
            guard valid else { throw .init(code: .invalidFramePayloadData, reason: "close reason is not UTF-8") }
            code = received
            reason = String(buffer: payload)
        }
        switch self.closing.peerClosed(code: code, reason: reason) {
        case .echoThenCloseTCP(let code):
            // Echo the code (RFC 6455 §5.5.1), then the server closes TCP (§7.1.1).
            self.writeThenCloseTCP(
                FrameWriter.closeFrame(code: code, reason: "", allocator: context.channel.allocator), context: context)
        case .closeTCP:
            context.close(promise: nil)
        case .ignore:
            break
        }
    }

    /// Fails the connection (RFC 6455 §7.1.7): a close frame with the code, then TCP close.
    func fail(_ violation: WebSocketProtocolViolation) {
        guard let context else { return }
        self.logger.debug("websocket protocol violation", metadata: ["switchboard.reason": "\(violation)"])
        self.configuration.counters?.protocolViolation()
        if let socket { self.onError?(socket, WebSocketError.violation(violation)) }
        self.perform(self.closing.peerFailed(code: violation.code, reason: violation.reason), context: context)
    }

    func perform(_ action: CloseHandshake.FailAction, context: ChannelHandlerContext) {
        switch action {
        case .sendCloseThenCloseTCP(let code, let reason):
            self.writeThenCloseTCP(
                FrameWriter.closeFrame(code: code, reason: reason, allocator: context.channel.allocator),
                context: context)
        case .closeTCP:
            context.close(promise: nil)
        }
    }

    /// Sends the last frame, then closes our side (FIN) and drops whatever the peer still sends until it closes
    /// too, or the close timeout passes. Closing at once would make the kernel answer the peer's in-flight bytes
    /// with a reset, which can destroy our close frame before the peer reads it.
    func writeThenCloseTCP(_ frame: ByteBuffer, context: ChannelHandlerContext) {
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(self.wrapOutboundOut(frame)).whenComplete { result in
            switch result {
            case .success: bound.value.close(mode: .output, promise: nil)
            case .failure: bound.value.close(promise: nil)
            }
        }
        self.timers.armCloseTimeout(self.configuration.closeTimeout, handler: self, context: context)
    }

    // MARK: Read pacing (the async API's backpressure)

    func read(context: ChannelHandlerContext) {
        if self.readsPaused {
            self.readPending = true
        } else {
            context.read()
        }
    }

    /// Stops asking the socket for bytes: the app's message sequence is full.
    func pauseReading() {
        self.readsPaused = true
    }

    /// Stops reading for good: the peer is dropped.
    func stopReading() {
        self.readsStopped = true
        self.readsPaused = true
        self.pending = nil
    }

    /// Reads again: the app caught up.
    func resumeReading() {
        guard !self.readsStopped else { return }
        self.readsPaused = false
        if self.readPending, let context {
            self.readPending = false
            context.read()
        }
    }
}

@available(*, unavailable)
extension WebSocketHandler: Sendable {}
