import NIOCore

/// Why the peer's bytes broke the protocol: the close code to answer with and a reason for the log.
struct WebSocketProtocolViolation: Error, Equatable, CustomStringConvertible {
    var code: WebSocketCloseCode
    var reason: String
    var description: String { "\(self.code): \(self.reason)" }
}

/// Parses client frames incrementally, from bytes as they arrive.
///
/// Control frames (at most 125 bytes) are delivered whole. A data frame is delivered as its header and then its
/// payload in the pieces that arrive, unmasked, so that a text message can fail UTF-8 validation at its first
/// invalid byte even inside one frame. Every header is checked before its payload is awaited: mask, reserved bits,
/// opcode, control-frame rules and the frame size limit.
struct FrameParser: Sendable {
    enum Event: Equatable {
        /// A complete control frame, payload unmasked.
        case control(FrameHeader, ByteBuffer)
        /// The header of a data frame; its payload follows as `.data` events.
        case dataHeader(FrameHeader)
        /// The next piece of the current data frame's payload; `endOfFrame` on its last piece.
        case data(ByteBuffer, endOfFrame: Bool)
    }

    private enum State {
        case header
        case payload(remaining: Int, maskKey: UInt32?, offset: Int)
    }

    /// The largest frame payload accepted.
    var maxFrameSize: Int
    /// Whether RSV1 may be set (permessage-deflate was negotiated).
    var allowsRSV1: Bool
    /// Whether frames must be masked (true on a server: RFC 6455 §5.1).
    var requiresMask: Bool = true
    private var state: State = .header

    init(maxFrameSize: Int, allowsRSV1: Bool) {
        self.maxFrameSize = maxFrameSize
        self.allowsRSV1 = allowsRSV1
    }

    /// The next event from `buffer`, consuming its bytes, or `nil` if more bytes are needed.
    mutating func next(from buffer: inout ByteBuffer) throws(WebSocketProtocolViolation) -> Event? {
        switch self.state {
        case .header:
            guard let (header, headerSize) = try self.peekHeader(buffer) else { return nil }
            if header.opcode.isControl {
                guard buffer.readableBytes >= headerSize + header.length else { return nil }
                buffer.moveReaderIndex(forwardBy: headerSize)
                var payload = buffer.readSlice(length: header.length)!
                if let key = header.maskKey { payload.unmask(with: key) }
                return .control(header, payload)
            }
            buffer.moveReaderIndex(forwardBy: headerSize)
            self.state = .payload(remaining: header.length, maskKey: header.maskKey, offset: 0)
            return .dataHeader(header)
        case .payload(let remaining, let maskKey, let offset):
            if remaining == 0 {
                self.state = .header
                return .data(ByteBuffer(), endOfFrame: true)
            }
            let count = min(remaining, buffer.readableBytes)
            guard count > 0 else { return nil }
            var piece = buffer.readSlice(length: count)!
            if let maskKey { piece.unmask(with: maskKey, offset: offset) }
            if count == remaining {
                self.state = .header
                return .data(piece, endOfFrame: true)
            }
            self.state = .payload(remaining: remaining - count, maskKey: maskKey, offset: offset + count)
            return .data(piece, endOfFrame: false)
        }
    }

    /// Reads and checks a header without consuming it; `nil` until all of it has arrived.
    private func peekHeader(_ buffer: ByteBuffer) throws(WebSocketProtocolViolation) -> (FrameHeader, Int)? {
        guard let first = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self),
            let second = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)
        else { return nil }
        let fin = first & 0x80 != 0
        let rsv1 = first & 0x40 != 0
        if first & 0x30 != 0 { throw .init(code: .protocolError, reason: "RSV2 or RSV3 set without an extension") }
        if rsv1 && !self.allowsRSV1 { throw .init(code: .protocolError, reason: "RSV1 set without permessage-deflate") }
        guard let opcode = WebSocketOpcode(rawValue: first & 0x0F) else {
            throw .init(code: .protocolError, reason: "reserved opcode \(first & 0x0F)")
        }
        let masked = second & 0x80 != 0
        if self.requiresMask && !masked { throw .init(code: .protocolError, reason: "unmasked client frame") }
        var size = 2
        var length = Int(second & 0x7F)
        if opcode.isControl {
            if !fin { throw .init(code: .protocolError, reason: "fragmented control frame") }
            if length > 125 { throw .init(code: .protocolError, reason: "control frame longer than 125 bytes") }
            if rsv1 { throw .init(code: .protocolError, reason: "RSV1 on a control frame") }
        }
        if length == 126 {
            guard let extended = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt16.self) else { return nil }
            length = Int(extended)
            size += 2
        } else if length == 127 {
            guard let extended = buffer.getInteger(at: buffer.readerIndex + 2, as: UInt64.self) else { return nil }
            if extended & (1 << 63) != 0 { throw .init(code: .protocolError, reason: "64-bit length with MSB set") }
            length = extended > UInt64(Int.max) ? Int.max : Int(extended)
            size += 8
        }
        if length > self.maxFrameSize {
            throw .init(code: .messageTooBig, reason: "frame of \(length) bytes exceeds \(self.maxFrameSize)")
        }
        var maskKey: UInt32?
        if masked {
            guard let key = buffer.getInteger(at: buffer.readerIndex + size, as: UInt32.self) else { return nil }
            maskKey = key
            size += 4
        }
        return (FrameHeader(fin: fin, rsv1: rsv1, opcode: opcode, length: length, maskKey: maskKey), size)
    }
}
