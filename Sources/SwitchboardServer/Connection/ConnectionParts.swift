import NIOCore
import NIOHTTP1

/// What the connection's async loop reads: HTTP parts while HTTP is spoken, raw bytes after a hijack.
enum ConnectionInbound: Sendable {
    case head(HTTPRequestHead)
    case body(ByteBuffer)
    case end
    /// Bytes after a hijack, outside HTTP framing.
    case raw(ByteBuffer)
}

/// What the connection's async loop writes: encoded bytes, with the end of each response marked so the
/// connection handler knows when the connection becomes idle.
enum ConnectionOutbound: Sendable {
    case bytes(ByteBuffer)
    /// The last bytes of a response (possibly none).
    case responseEnd(ByteBuffer?)
}

extension ConnectionOutbound {
    /// The bytes to put on the wire.
    var buffer: ByteBuffer {
        switch self {
        case .bytes(let bytes): bytes
        case .responseEnd(let bytes): bytes ?? ByteBuffer()
        }
    }
}
