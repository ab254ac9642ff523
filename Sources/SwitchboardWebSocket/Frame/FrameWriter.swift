import NIOCore

/// Writes server frames: unmasked, header and (small) payload in one buffer.
enum FrameWriter {
    /// Payloads up to this size are copied behind the header so that a frame is one buffer and one iovec.
    static let inlinePayloadLimit = 4096

    /// The bytes of a frame header for `length` payload bytes.
    static func writeHeader(
        fin: Bool = true, rsv1: Bool = false, opcode: WebSocketOpcode, length: Int, into buffer: inout ByteBuffer
    ) {
        buffer.writeInteger((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode.rawValue, as: UInt8.self)
        if length < 126 {
            buffer.writeInteger(UInt8(length))
        } else if length <= Int(UInt16.max) {
            buffer.writeInteger(UInt8(126))
            buffer.writeInteger(UInt16(length))
        } else {
            buffer.writeInteger(UInt8(127))
            buffer.writeInteger(UInt64(length))
        }
    }

    /// A whole frame as one buffer (header + payload).
    static func frame(
        fin: Bool = true, rsv1: Bool = false, opcode: WebSocketOpcode, payload: ByteBuffer,
        allocator: ByteBufferAllocator
    ) -> ByteBuffer {
        var payload = payload
        var buffer = allocator.buffer(capacity: 10 + payload.readableBytes)
        self.writeHeader(fin: fin, rsv1: rsv1, opcode: opcode, length: payload.readableBytes, into: &buffer)
        buffer.writeBuffer(&payload)
        return buffer
    }

    /// A close frame with `code` and `reason` (the reason cut to fit the 125-byte control payload).
    static func closeFrame(code: WebSocketCloseCode?, reason: String, allocator: ByteBufferAllocator) -> ByteBuffer {
        var payload = allocator.buffer(capacity: 2 + reason.utf8.count)
        if let code {
            payload.writeInteger(code.rawValue)
            var reasonBytes = Array(reason.utf8.prefix(123))
            // Do not cut a code point in half.
            while !reasonBytes.isEmpty, String(validating: reasonBytes, as: UTF8.self) == nil {
                reasonBytes.removeLast()
            }
            payload.writeBytes(reasonBytes)
        }
        return self.frame(opcode: .close, payload: payload, allocator: allocator)
    }
}
