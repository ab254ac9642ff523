import NIOConcurrencyHelpers
import NIOCore

/// A message framed once — and compressed once per compression setting — that can then be written to any number
/// of sockets: the basis of fan-out.
///
/// ```swift
/// let prepared = PreparedMessage(.text("hello, everyone"))
/// for socket in room { try? socket.send(prepared) }
/// ```
///
/// Every socket gets the same `ByteBuffer` (reference-counted storage), so fan-out costs no copy or encoding per
/// recipient. A fan-out over many sockets resolves the frames once per ``FrameEncoding`` with ``PreparedFrames``
/// and sends those, which takes no lock per recipient.
public final class PreparedMessage: Sendable {
    /// The message.
    public let message: WebSocketMessage
    /// The uncompressed frame.
    let plainFrame: ByteBuffer
    /// Compressed frames by encoding, made on first use. Read once per encoding by each fan-out pass (not per
    /// recipient), so the lock is taken a handful of times per message.
    private let compressedFrames = NIOLockedValueBox<[FrameEncoding: ByteBuffer]>([:])

    /// Frames `message`.
    public init(_ message: WebSocketMessage) {
        self.message = message
        self.plainFrame = FrameWriter.frame(
            opcode: message.kind == .text ? .text : .binary,
            payload: message.data,
            allocator: ByteBufferAllocator()
        )
    }

    /// The payload's size in bytes (uncompressed).
    public var payloadSize: Int { self.message.data.readableBytes }

    /// The frame bytes for a socket with `encoding`.
    func frame(for encoding: FrameEncoding) -> ByteBuffer {
        guard case .deflate(let bits, let level, let minimum) = encoding.kind, self.payloadSize >= minimum else {
            return self.plainFrame
        }
        if let cached = self.compressedFrames.withLockedValue({ $0[encoding] }) { return cached }
        // Two loops that miss at the same moment both compress; the result is the same, so either may win.
        let compressed = Deflaters.withDeflater(windowBits: bits, level: level) { deflater in
            try deflater.compress(self.message.data, allocator: ByteBufferAllocator())
        }
        guard let compressed else { return self.plainFrame }
        let frame = FrameWriter.frame(
            rsv1: true,
            opcode: self.message.kind == .text ? .text : .binary,
            payload: compressed,
            allocator: ByteBufferAllocator()
        )
        self.compressedFrames.withLockedValue { $0[encoding] = frame }
        return frame
    }
}

extension WebSocket {
    /// Sends a prepared message: the same encoded frame as every other recipient with this socket's encoding.
    ///
    /// - Throws: ``WebSocketError/closed`` if the socket is closed.
    public func send(_ prepared: PreparedMessage) throws {
        let frame = prepared.frame(for: self.frameEncoding)
        if self.eventLoop.inEventLoop {
            try self.handler.value.send(frames: CollectionOfOne(frame))
        } else {
            try self.onLoopLater { handler in try handler.send(frames: CollectionOfOne(frame)) }
        }
    }

    /// Sends prepared messages in order with one flush: a fan-out that fell behind sends its backlog to each socket
    /// in one system call.
    ///
    /// - Throws: ``WebSocketError/closed`` if the socket is closed.
    public func send(_ batch: [PreparedMessage]) throws {
        try self.send(PreparedFrames(batch, encoding: self.frameEncoding))
    }

    /// Sends frames resolved for this socket's encoding, in order, with one flush; frames resolved for another
    /// encoding are resolved again for this socket (correct, but no longer shared).
    ///
    /// - Throws: ``WebSocketError/closed`` if the socket is closed.
    public func send(_ frames: PreparedFrames) throws {
        guard !frames.isEmpty else { return }
        let frames = frames.encoding == self.frameEncoding ? frames : frames.resolved(for: self.frameEncoding)
        if self.eventLoop.inEventLoop {
            try self.handler.value.send(frames: frames.frames)
        } else {
            try self.onLoopLater { handler in try handler.send(frames: frames.frames) }
        }
    }
}
