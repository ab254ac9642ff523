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

    struct MessageInProgress {
        var kind: WebSocketMessage.Kind
        var compressed: Bool
        var buffer: ByteBuffer?
        var size: Int
    }

    let configuration: WebSocketConfiguration
    let deflate: NegotiatedDeflate?
    let logger: Logger
    /// The closing handshake; every transition away from open also stops off-loop sends (``WebSocket/isOpen``).
    private(set) var closing = CloseHandshake() {
        didSet { if !self.closing.isOpen { self.socket?.markNotOpen() } }
    }
    private var parser: FrameParser
    private var pending: ByteBuffer?
    private var message: MessageInProgress?
    private var frameFin = false
    private var utf8 = UTF8Validator()
    private var inflater: Inflater?
    private var deflater: Deflater?
    private(set) var context: ChannelHandlerContext?
    /// What the app asked of the socket in its set-up closure, which runs just before the handler joins the
    /// pipeline: done in order once it has (`nil` from then on). A fan-out member attached there replays what
    /// was published during the handshake, and a gap it held closes the socket: none of it may be lost.
    private var beforeAdded: [(WebSocketHandler) -> Void]? = []
    /// The channel's writability, as of the last event.
    private var isWritable = true
    var timers = WebSocketTimers()
    private var readsPaused = false
    private var readPending = false

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
    private var isBeforeAdded: Bool { self.context == nil && self.beforeAdded != nil }

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
        self.inflater = nil
        self.deflater = nil
        self.pending = nil
        self.message = nil
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
    private func appOperation<Result>(_ body: () throws -> Result) rethrows -> Result {
        self.appOperations += 1
        defer { self.appOperations -= 1 }
        return try body()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        guard self.closing.readsFrames else { return }
        self.timers.sawTraffic(context: context)
        if var pending = self.pending, pending.readableBytes > 0 {
            self.pending = nil  // keep `pending` uniquely referenced while appending
            pending.writeBuffer(&bytes)
            bytes = pending
        }
        do {
            while self.closing.readsFrames, let event = try self.parser.next(from: &bytes) {
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
            try self.startFrame(header)
        case .data(let piece, let endOfFrame):
            try self.receive(piece, endOfFrame: endOfFrame)
        }
    }

    private func startFrame(_ header: FrameHeader) throws(WebSocketProtocolViolation) {
        if header.opcode == .continuation {
            guard self.message != nil else {
                throw .init(code: .protocolError, reason: "continuation frame without a message")
            }
            // RFC 7692 §6.1: RSV1 marks a compressed message on its first frame only.
            if header.rsv1 { throw .init(code: .protocolError, reason: "RSV1 on a continuation frame") }
        } else {
            guard self.message == nil else {
                throw .init(code: .protocolError, reason: "new data frame inside a fragmented message")
            }
            self.message = MessageInProgress(
                kind: header.opcode == .text ? .text : .binary,
                compressed: header.rsv1,
                buffer: nil,
                size: 0
            )
            self.utf8 = UTF8Validator()
        }
        if !self.message!.compressed, self.message!.size + header.length > self.configuration.maxMessageSize {
            throw .init(code: .messageTooBig, reason: "message exceeds \(self.configuration.maxMessageSize) bytes")
        }
        self.frameFin = header.fin
    }

    private func receive(_ piece: ByteBuffer, endOfFrame: Bool) throws {
        guard var message = self.message else { return }
        self.message = nil  // keep the message buffer uniquely referenced while appending
        if message.compressed {
            try self.inflate(piece, into: &message, final: endOfFrame && self.frameFin)
        } else {
            if message.kind == .text { try self.validateUTF8(piece) }
            message.size += piece.readableBytes
            if message.buffer == nil {
                message.buffer = piece
            } else {
                var piece = piece
                message.buffer!.writeBuffer(&piece)
            }
        }
        guard endOfFrame && self.frameFin else {
            self.message = message
            return
        }
        if message.kind == .text && !self.utf8.isComplete {
            throw WebSocketProtocolViolation(
                code: .invalidFramePayloadData, reason: "text message ends inside a code point")
        }
        // After our close frame the peer's remaining data is read (to reach its close frame) but not delivered.
        guard self.closing.isOpen, let socket else { return }
        self.configuration.counters?.received(bytes: message.buffer?.readableBytes ?? 0)
        socket.deliver(WebSocketMessage(kind: message.kind, data: message.buffer ?? ByteBuffer()), handler: self)
    }

    private func validateUTF8(_ bytes: ByteBuffer) throws(WebSocketProtocolViolation) {
        let valid = bytes.withUnsafeReadableBytes { self.utf8.validate($0) }
        if !valid { throw .init(code: .invalidFramePayloadData, reason: "text message is not valid UTF-8") }
    }

    private func inflate(_ piece: ByteBuffer, into message: inout MessageInProgress, final: Bool) throws {
        let inflater = try self.inflater ?? Inflater()
        self.inflater = inflater
        var output = message.buffer ?? (self.context?.channel.allocator ?? ByteBufferAllocator()).buffer(capacity: 256)
        let before = output.writerIndex
        var fits: Bool
        do {
            fits = try inflater.inflate(piece, into: &output, limit: self.configuration.maxMessageSize)
            if fits && final {
                fits = try inflater.inflate(
                    ByteBuffer(bytes: [0x00, 0x00, 0xFF, 0xFF]), into: &output, limit: self.configuration.maxMessageSize
                )
            }
        } catch {
            throw WebSocketProtocolViolation(code: .invalidFramePayloadData, reason: "invalid compressed data")
        }
        guard fits else {
            throw WebSocketProtocolViolation(
                code: .messageTooBig, reason: "decompressed message exceeds \(self.configuration.maxMessageSize) bytes")
        }
        if message.kind == .text, output.writerIndex > before {
            try self.validateUTF8(output.getSlice(at: before, length: output.writerIndex - before)!)
        }
        message.size = output.readableBytes
        message.buffer = output
        if final, self.deflate?.clientNoContextTakeover == true { inflater.reset() }
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

    private func perform(_ action: CloseHandshake.FailAction, context: ChannelHandlerContext) {
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
    private func writeThenCloseTCP(_ frame: ByteBuffer, context: ChannelHandlerContext) {
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

    /// Reads again: the app caught up.
    func resumeReading() {
        self.readsPaused = false
        if self.readPending, let context {
            self.readPending = false
            context.read()
        }
    }

    // MARK: Outbound

    /// Starts the closing handshake from our side.
    func close(code: WebSocketCloseCode, reason: String) {
        if self.isBeforeAdded {
            self.beforeAdded?.append { $0.close(code: code, reason: reason) }
            return
        }
        guard let context, case .sendClose(let code, let reason) = self.closing.startClosing(code: code, reason: reason)
        else { return }
        self.appOperation {
            context.writeAndFlush(
                self.wrapOutboundOut(
                    FrameWriter.closeFrame(code: code, reason: reason, allocator: context.channel.allocator)),
                promise: nil)
        }
        self.timers.armCloseTimeout(self.configuration.closeTimeout, handler: self, context: context)
    }

    /// Sends `message` as one frame, compressed when negotiated and worth it.
    func send(_ message: WebSocketMessage, written: EventLoopPromise<Void>? = nil) throws {
        // A promise is not kept for later: a socket whose handler is never added would leave it unfulfilled.
        if written == nil, self.isBeforeAdded {
            self.beforeAdded?.append { try? $0.send(message) }
            return
        }
        try self.appOperation { try self.sendNow(message, written: written) }
    }

    /// Sends `message`; `written` completes once it is written to the socket (fails if it never will be).
    private func sendNow(_ message: WebSocketMessage, written: EventLoopPromise<Void>? = nil) throws {
        guard self.closing.isOpen, let context else { throw WebSocketError.closed }
        self.configuration.counters?.sent(bytes: message.data.readableBytes)
        let opcode: WebSocketOpcode = message.kind == .text ? .text : .binary
        if let deflate, let bits = deflate.serverWindowBits, message.data.readableBytes >= deflate.minimumSizeToCompress
        {
            let deflater = try self.deflater ?? Deflater(windowBits: bits, level: deflate.compressionLevel)
            self.deflater = deflater
            let compressed = try deflater.compress(message.data, allocator: context.channel.allocator)
            if deflate.serverNoContextTakeover { deflater.reset() }
            try self.write(
                FrameWriter.frame(
                    rsv1: true, opcode: opcode, payload: compressed, allocator: context.channel.allocator),
                context: context, written: written)
        } else if message.data.readableBytes > FrameWriter.inlinePayloadLimit {
            // Large payloads are not copied: header and payload go out as two buffers with one flush (writev).
            var header = context.channel.allocator.buffer(capacity: 10)
            FrameWriter.writeHeader(opcode: opcode, length: message.data.readableBytes, into: &header)
            try self.write(header, message.data, context: context, written: written)
        } else {
            try self.write(
                FrameWriter.frame(opcode: opcode, payload: message.data, allocator: context.channel.allocator),
                context: context, written: written)
        }
    }

    /// Sends a frame already encoded (a prepared message).
    func send(encodedFrame: ByteBuffer) throws {
        if self.isBeforeAdded {
            self.beforeAdded?.append { try? $0.send(encodedFrame: encodedFrame) }
            return
        }
        guard self.closing.isOpen, let context else { throw WebSocketError.closed }
        try self.appOperation { try self.write(encodedFrame, context: context) }
    }

    /// Sends frames already encoded, in order, with one flush: a fan-out that fell behind catches up with one
    /// system call per socket instead of one per message.
    func send(encodedFrames frames: some Collection<ByteBuffer>) throws {
        if self.isBeforeAdded {
            let copied = Array(frames)
            self.beforeAdded?.append { try? $0.send(encodedFrames: copied) }
            return
        }
        try self.appOperation { try self.sendNow(encodedFrames: frames) }
    }

    private func sendNow(encodedFrames frames: some Collection<ByteBuffer>) throws {
        guard self.closing.isOpen, let context else { throw WebSocketError.closed }
        if !self.isWritable,
            try !self.admitsWhileUnwritable(bytes: frames.reduce(0) { $0 + $1.readableBytes }, context: context)
        {
            return
        }
        for frame in frames { context.write(self.wrapOutboundOut(frame), promise: nil) }
        context.flush()
    }

    /// Sends a ping.
    func ping(_ payload: ByteBuffer = ByteBuffer()) throws {
        guard self.closing.isOpen, let context else { throw WebSocketError.closed }
        try self.appOperation {
            try self.write(
                FrameWriter.frame(opcode: .ping, payload: payload, allocator: context.channel.allocator),
                context: context)
        }
    }

    /// Ends an unresponsive connection: a close frame for the record, then TCP close without waiting.
    func abort(code: WebSocketCloseCode, reason: String, context: ChannelHandlerContext) {
        guard let action = self.closing.peerUnresponsive(code: code, reason: reason) else { return }
        self.perform(action, context: context)
    }

    /// Writes and flushes, unless the peer is a slow consumer.
    private func write(
        _ frame: ByteBuffer, _ more: ByteBuffer? = nil, context: ChannelHandlerContext,
        written: EventLoopPromise<Void>? = nil
    ) throws {
        if !self.isWritable,
            try !self.admitsWhileUnwritable(bytes: frame.readableBytes + (more?.readableBytes ?? 0), context: context)
        {
            written?.fail(WebSocketError.dropped)
            return
        }
        if let more {
            context.write(self.wrapOutboundOut(frame), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(more), promise: written)
        } else {
            context.writeAndFlush(self.wrapOutboundOut(frame), promise: written)
        }
    }

    /// Applies the slow-consumer policy to `bytes` more while the channel is not writable: `true` to queue them,
    /// `false` to drop them (policy `.drop`); closes the connection and throws (policy `.close`).
    private func admitsWhileUnwritable(bytes: Int, context: ChannelHandlerContext) throws -> Bool {
        let queued = (try? context.channel.syncOptions?.getOption(.bufferedWritableBytes)) ?? 0
        guard queued + bytes > self.configuration.maxQueuedBytes else { return true }
        switch self.configuration.slowConsumerPolicy.kind {
        case .drop:
            self.configuration.counters?.messageDroppedForSlowConsumer()
            return false
        case .close(let code):
            self.configuration.counters?.slowConsumerClosed()
            self.logger.debug("slow consumer: closing", metadata: ["switchboard.queued": "\(queued)"])
            self.closing.droppedSlowConsumer(code: code)
            // The peer is not reading, so a close handshake cannot complete: drop the connection.
            context.close(promise: nil)
            throw WebSocketError.closed
        }
    }
}

@available(*, unavailable)
extension WebSocketHandler: Sendable {}
