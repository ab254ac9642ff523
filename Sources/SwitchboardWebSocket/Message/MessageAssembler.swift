import NIOCore

/// Assembles messages from data frames as the frame parser delivers them: fragments joined in order, UTF-8 of a
/// text message validated as each piece arrives (a bad byte fails the message at once, not at its end), a compressed
/// message inflated as it comes (RFC 7692), and the message's size capped (after inflating, per message: a frame
/// limit alone would let a message of many frames, or a small frame that inflates a lot, past it).
///
/// A pure value: frames in, a message (or the protocol violation to close with) out; no channel, no callbacks. The
/// handler owns one per connection.
struct MessageAssembler {
    private struct InProgress {
        var kind: WebSocketMessage.Kind
        var compressed: Bool
        var buffer: ByteBuffer?
        var size: Int
    }

    /// The largest message, after inflating.
    let maxMessageSize: Int
    /// What permessage-deflate agreed; `nil` without it.
    let deflate: NegotiatedDeflate?
    private let allocator: ByteBufferAllocator
    private var message: InProgress?
    /// The current frame is the message's last.
    private var frameFin = false
    private var utf8 = UTF8Validator()
    private var inflater: Inflater?

    init(maxMessageSize: Int, deflate: NegotiatedDeflate?, allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.maxMessageSize = maxMessageSize
        self.deflate = deflate
        self.allocator = allocator
    }

    /// A data frame's header: a new message, or the next fragment of the current one.
    mutating func startFrame(_ header: FrameHeader) throws(WebSocketProtocolViolation) {
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
            self.message = InProgress(
                kind: header.opcode == .text ? .text : .binary, compressed: header.rsv1, buffer: nil, size: 0)
            self.utf8 = UTF8Validator()
        }
        if self.message?.compressed == false, (self.message?.size ?? 0) + header.length > self.maxMessageSize {
            throw .init(code: .messageTooBig, reason: "message exceeds \(self.maxMessageSize) bytes")
        }
        self.frameFin = header.fin
    }

    /// The next piece of the current frame's payload (unmasked); the message once its last piece came.
    mutating func receive(
        _ piece: ByteBuffer, endOfFrame: Bool
    ) throws(WebSocketProtocolViolation) -> WebSocketMessage? {
        guard var message = self.message else { return nil }
        self.message = nil  // keep the message buffer uniquely referenced while appending
        let isLast = endOfFrame && self.frameFin
        if message.compressed {
            try self.inflate(piece, into: &message, final: isLast)
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
        guard isLast else {
            self.message = message
            return nil
        }
        if message.kind == .text && !self.utf8.isComplete {
            throw .init(code: .invalidFramePayloadData, reason: "text message ends inside a code point")
        }
        return WebSocketMessage(kind: message.kind, data: message.buffer ?? ByteBuffer())
    }

    /// Drops what is in progress and the decompressor: the connection ended.
    mutating func reset() {
        self.message = nil
        self.inflater = nil
    }

    private mutating func validateUTF8(_ bytes: ByteBuffer) throws(WebSocketProtocolViolation) {
        let valid = bytes.withUnsafeReadableBytes { self.utf8.validate($0) }
        if !valid { throw .init(code: .invalidFramePayloadData, reason: "text message is not valid UTF-8") }
    }

    private mutating func inflate(
        _ piece: ByteBuffer, into message: inout InProgress, final: Bool
    ) throws(WebSocketProtocolViolation) {
        let inflater: Inflater
        do {
            inflater = try self.inflater ?? Inflater()
        } catch {
            throw .init(code: .internalError, reason: "no decompressor: \(error)")
        }
        self.inflater = inflater
        var output = message.buffer ?? self.allocator.buffer(capacity: 256)
        let before = output.writerIndex
        var fits: Bool
        do {
            fits = try inflater.inflate(piece, into: &output, limit: self.maxMessageSize)
            if fits && final {
                // RFC 7692 §7.2.2: the sender removed the empty block's tail; it goes back before the last inflate.
                fits = try inflater.inflate(
                    ByteBuffer(bytes: [0x00, 0x00, 0xFF, 0xFF]), into: &output, limit: self.maxMessageSize)
            }
        } catch {
            throw .init(code: .invalidFramePayloadData, reason: "invalid compressed data")
        }
        guard fits else {
            throw .init(code: .messageTooBig, reason: "decompressed message exceeds \(self.maxMessageSize) bytes")
        }
        if message.kind == .text, output.writerIndex > before {
            try self.validateUTF8(output.getSlice(at: before, length: output.writerIndex - before)!)
        }
        message.size = output.readableBytes
        message.buffer = output
        if final, self.deflate?.clientNoContextTakeover == true { inflater.reset() }
    }
}
