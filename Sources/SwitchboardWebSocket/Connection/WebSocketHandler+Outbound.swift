import Logging
import NIOCore

/// What the app sends, and the closing handshake from our side. Every send (a message, prepared frames, a ping) reduces
/// to ``send(frames:written:)``: one check of the socket's state, one application of the slow-consumer policy, the
/// frames written in order with one flush.
extension WebSocketHandler {
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

    /// Sends a close frame and ends the connection, reading nothing more: for a peer closed by policy (it floods, it
    /// abuses), whose further bytes are not worth reading. After the close frame our side of the connection is shut
    /// (the peer reads the frame, then end of stream); a second later the connection is closed, which resets it if
    /// the peer sent more (those bytes stay unread in the kernel, bounded by its buffer).
    func drop(code: WebSocketCloseCode, reason: String) {
        if self.isBeforeAdded {
            self.beforeAdded?.append { $0.drop(code: code, reason: reason) }
            return
        }
        guard let context else { return }
        self.stopReading()
        guard case .sendClose(let code, let reason) = self.closing.startClosing(code: code, reason: reason) else {
            // Closing already: our close frame went out, and what the peer sends until it answers is not read.
            return context.close(promise: nil)
        }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        self.appOperation {
            context.writeAndFlush(
                self.wrapOutboundOut(
                    FrameWriter.closeFrame(code: code, reason: reason, allocator: context.channel.allocator))
            ).whenComplete { result in
                let context = bound.value
                guard case .success = result else { return context.close(promise: nil) }
                let shut = context.eventLoop.makePromise(of: Void.self)
                context.close(mode: .output, promise: shut)
                shut.futureResult.whenComplete { shutdown in
                    // Without a half-close (TLS cannot), at once; else after the peer had time to read the frame.
                    guard case .success = shutdown else { return bound.value.close(promise: nil) }
                    bound.value.eventLoop.scheduleTask(in: Self.dropLinger) { bound.value.close(promise: nil) }
                }
            }
        }
    }

    /// How long a dropped connection stays half-open after its close frame, for the peer to read it.
    static let dropLinger = TimeAmount.seconds(1)

    /// Sends `message` as one frame, compressed when negotiated and worth it; `written` completes once it is written
    /// to the connection (fails if it never will be).
    func send(_ message: WebSocketMessage, written: EventLoopPromise<Void>? = nil) throws {
        guard !self.isBeforeAdded else {
            // A promise is not kept for later: a socket whose handler is never added would leave it unfulfilled.
            guard written == nil else { throw WebSocketError.closed }
            self.beforeAdded?.append { try? $0.send(message) }
            return
        }
        guard self.closing.isOpen, let context else { throw WebSocketError.closed }
        self.configuration.counters?.sent(bytes: message.data.readableBytes)
        let opcode: WebSocketOpcode = message.kind == .text ? .text : .binary
        let allocator = context.channel.allocator
        if let deflate, let bits = deflate.serverWindowBits, message.data.readableBytes >= deflate.minimumSizeToCompress
        {
            let deflater = try self.deflater ?? Deflater(windowBits: bits, level: deflate.compressionLevel)
            self.deflater = deflater
            let compressed = try deflater.compress(message.data, allocator: allocator)
            if deflate.serverNoContextTakeover { deflater.reset() }
            let frame = FrameWriter.frame(rsv1: true, opcode: opcode, payload: compressed, allocator: allocator)
            try self.send(frames: CollectionOfOne(frame), written: written)
        } else if message.data.readableBytes > FrameWriter.inlinePayloadLimit {
            // Large payloads are not copied: header and payload go out as two buffers with one flush (writev).
            var header = allocator.buffer(capacity: 10)
            FrameWriter.writeHeader(opcode: opcode, length: message.data.readableBytes, into: &header)
            try self.send(frames: [header, message.data], written: written)
        } else {
            let frame = FrameWriter.frame(opcode: opcode, payload: message.data, allocator: allocator)
            try self.send(frames: CollectionOfOne(frame), written: written)
        }
    }

    /// Sends a ping.
    func ping(_ payload: ByteBuffer = ByteBuffer()) throws {
        guard let context else { throw WebSocketError.closed }
        let frame = FrameWriter.frame(opcode: .ping, payload: payload, allocator: context.channel.allocator)
        try self.send(frames: CollectionOfOne(frame), written: nil)
    }

    /// Sends frames already encoded (prepared messages), in order, with one flush: a fan-out that fell behind catches
    /// up with one system call per socket instead of one per message.
    ///
    /// The one outbound primitive: before the handler joins the pipeline the frames wait for it (in order with
    /// everything else the set-up closure did); once the socket is closing, sends throw; while the channel is not
    /// writable, the slow-consumer policy decides (queue, drop, or close the connection).
    func send(frames: some Collection<ByteBuffer>, written: EventLoopPromise<Void>? = nil) throws {
        if self.isBeforeAdded {
            // A promise is not kept for later: a socket whose handler is never added would leave it unfulfilled.
            guard written == nil else { throw WebSocketError.closed }
            let copied = Array(frames)
            self.beforeAdded?.append { try? $0.send(frames: copied) }
            return
        }
        guard self.closing.isOpen, let context else { throw WebSocketError.closed }
        try self.appOperation {
            if !self.isWritable,
                try !self.admitsWhileUnwritable(bytes: frames.reduce(0) { $0 + $1.readableBytes }, context: context)
            {
                written?.fail(WebSocketError.dropped)
                return
            }
            var remaining = frames.count
            for frame in frames {
                remaining -= 1
                context.write(self.wrapOutboundOut(frame), promise: remaining == 0 ? written : nil)
            }
            context.flush()
        }
    }

    /// Ends an unresponsive connection: a close frame for the record, then TCP close without waiting.
    func abort(code: WebSocketCloseCode, reason: String, context: ChannelHandlerContext) {
        guard let action = self.closing.peerUnresponsive(code: code, reason: reason) else { return }
        self.perform(action, context: context)
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
