/// A frame opcode (RFC 6455 §5.2).
enum WebSocketOpcode: UInt8, Sendable {
    case continuation = 0x0
    case text = 0x1
    case binary = 0x2
    case close = 0x8
    case ping = 0x9
    case pong = 0xA

    var isControl: Bool { self.rawValue & 0x8 != 0 }
}

/// A frame header as read from the wire.
struct FrameHeader: Sendable, Equatable {
    var fin: Bool
    var rsv1: Bool
    var opcode: WebSocketOpcode
    var length: Int
    var maskKey: UInt32?
}
