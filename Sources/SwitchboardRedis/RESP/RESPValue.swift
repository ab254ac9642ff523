public import NIOCore

/// A value of the Redis serialization protocol, RESP2 and RESP3 (https://redis.io/docs/latest/develop/reference/protocol-spec/).
public indirect enum RESPValue: Sendable, Equatable {
    /// `+OK`
    case simpleString(String)
    /// `-ERR message` (and RESP3 `!` bulk errors).
    case error(String)
    /// `:42`
    case integer(Int64)
    /// `$5 hello`; `nil` for RESP2's null bulk string (`$-1`).
    case bulkString(ByteBuffer?)
    /// `*2 …`; `nil` for RESP2's null array (`*-1`).
    case array([RESPValue]?)
    /// RESP3 `_`.
    case null
    /// RESP3 `#t` / `#f`.
    case boolean(Bool)
    /// RESP3 `,3.14`.
    case double(Double)
    /// RESP3 `(3492890328409238509324850943850943825024385`, kept as its digits.
    case bigNumber(String)
    /// RESP3 `=15 txt:Some string`: the format and the text.
    case verbatimString(format: String, text: ByteBuffer)
    /// RESP3 `%` map, in wire order.
    case map([RESPPair])
    /// RESP3 `~` set, in wire order.
    case set([RESPValue])
    /// RESP3 `>` push (pub/sub messages arrive as pushes on RESP3 connections).
    case push([RESPValue])
}

/// A key and a value of a RESP3 map.
public struct RESPPair: Sendable, Equatable {
    public var key: RESPValue
    public var value: RESPValue

    public init(key: RESPValue, value: RESPValue) {
        self.key = key
        self.value = value
    }
}

extension RESPValue {
    /// The bytes of a bulk, simple or verbatim string.
    public var bytes: ByteBuffer? {
        switch self {
        case .bulkString(let buffer): buffer
        case .simpleString(let string): ByteBuffer(string: string)
        case .verbatimString(_, let text): text
        default: nil
        }
    }

    /// The text of a bulk, simple or verbatim string.
    public var string: String? { self.bytes.map { String(buffer: $0) } }

    /// The elements of an array, set or push.
    public var elements: [RESPValue]? {
        switch self {
        case .array(let elements): elements
        case .set(let elements), .push(let elements): elements
        default: nil
        }
    }
}
