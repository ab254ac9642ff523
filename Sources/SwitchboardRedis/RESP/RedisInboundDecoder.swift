import NIOCore

/// What a connection reads: a reply, or (on a subscriber connection) a pub/sub message.
enum RedisInbound {
    /// Any reply, decoded in full.
    case value(RESPValue)
    /// An integer reply (`PUBLISH`'s, among many), read without building a ``RESPValue``.
    case integer(Int64)
    /// A pub/sub message (`message` or `smessage`), its channel and payload slices of the read buffer.
    case message(channel: ByteBuffer, payload: ByteBuffer)
}

/// The connection's decoder: ``RESPDecoder`` for everything, with two fast paths for what a busy connection reads
/// most: integer replies, and pub/sub messages, whose channel and payload are sliced from the bytes read (no array,
/// no value per element, no `String`). Same limits, same errors.
struct RedisInboundDecoder: NIOSingleStepByteToMessageDecoder {
    typealias InboundOut = RedisInbound

    private var resp: RESPDecoder
    /// Whether arrays and pushes that start with `message` or `smessage` are pub/sub messages (only on a subscriber
    /// connection: elsewhere such an array is a reply, say `LRANGE`'s).
    private let recognizesMessages: Bool

    init(limits: RESPLimits, recognizesMessages: Bool) {
        self.resp = RESPDecoder(limits: limits)
        self.recognizesMessages = recognizesMessages
    }

    mutating func decode(buffer: inout ByteBuffer) throws -> RedisInbound? {
        guard let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        switch type {
        case UInt8(ascii: ":"):
            guard let (value, next) = try self.resp.number(buffer, at: buffer.readerIndex + 1) else { return nil }
            buffer.moveReaderIndex(to: next)
            return .integer(value)
        case UInt8(ascii: "*"), UInt8(ascii: ">"):
            if self.recognizesMessages, let message = try self.message(&buffer) { return message }
        default:
            break
        }
        return try self.resp.decode(buffer: &buffer).map(RedisInbound.value)
    }

    mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RedisInbound? {
        try self.decode(buffer: &buffer)
    }

    /// `*3\r\n$7\r\nmessage\r\n$<n>\r\n<channel>\r\n$<m>\r\n<payload>\r\n` (or `>3`, or `$8 smessage`); `nil` when
    /// the bytes are another value, or not all here yet (the general decoder then decides, or waits).
    private func message(_ buffer: inout ByteBuffer) throws -> RedisInbound? {
        let start = buffer.readerIndex
        let prefix: Int
        if Self.matches(buffer, at: start + 1, "3\r\n$7\r\nmessage\r\n") {
            prefix = 1 + 16
        } else if Self.matches(buffer, at: start + 1, "3\r\n$8\r\nsmessage\r\n") {
            prefix = 1 + 17
        } else {
            return nil
        }
        guard let channel = try self.bulk(buffer, at: start + prefix),
            let payload = try self.bulk(buffer, at: channel.next)
        else { return nil }
        let message = RedisInbound.message(
            channel: buffer.getSlice(at: channel.start, length: channel.length)!,
            payload: buffer.getSlice(at: payload.start, length: payload.length)!)
        buffer.moveReaderIndex(to: payload.next)
        return message
    }

    /// A bulk string at `index`: where its bytes start, how many, and where the next value starts; `nil` if not all
    /// here yet. Throws what the general decoder would.
    private func bulk(_ buffer: ByteBuffer, at index: Int) throws -> (start: Int, length: Int, next: Int)? {
        guard let type = buffer.getInteger(at: index, as: UInt8.self) else { return nil }
        guard type == UInt8(ascii: "$") else { throw RESPDecodingError.unknownType(type) }
        guard let (length, start) = try self.resp.number(buffer, at: index + 1) else { return nil }
        guard length >= 0 else { throw RESPDecodingError.invalidLength(String(length)) }
        guard length <= self.resp.limits.maxBulkLength else {
            throw RESPDecodingError.bulkTooLong(self.resp.limits.maxBulkLength)
        }
        let end = start + Int(length)
        guard end + 2 <= buffer.writerIndex else { return nil }
        guard buffer.getInteger(at: end, as: UInt16.self) == 0x0D0A else { throw RESPDecodingError.missingCRLF }
        return (start, Int(length), end + 2)
    }

    private static func matches(_ buffer: ByteBuffer, at index: Int, _ text: StaticString) -> Bool {
        guard index + text.utf8CodeUnitCount <= buffer.writerIndex else { return false }
        return buffer.withUnsafeReadableBytes { bytes in
            let offset = index - buffer.readerIndex
            return text.withUTF8Buffer { expected in
                for position in 0..<expected.count where bytes[offset + position] != expected[position] {
                    return false
                }
                return true
            }
        }
    }
}
