/// How a socket frames the prepared messages it is sent: plainly, or compressed with particular settings.
///
/// Sockets with equal encodings can be sent the very same frame bytes, so a fan-out resolves a
/// ``PreparedMessage`` once per encoding, not once per socket. A socket's encoding is fixed by its handshake:
/// ``plain`` unless it negotiated permessage-deflate with `server_no_context_takeover` (the server's default),
/// since only then does a compressed message not depend on what the socket was sent before.
public struct FrameEncoding: Hashable, Sendable, CustomStringConvertible {
    enum Kind: Hashable {
        case plain
        /// Raw deflate with this window and level; payloads shorter than `minimumSize` go out plain.
        case deflate(windowBits: Int, level: Int, minimumSize: Int)
    }

    let kind: Kind

    /// Uncompressed frames.
    public static let plain = FrameEncoding(kind: .plain)

    /// The encoding for a socket that negotiated `deflate` (or nothing).
    init(_ deflate: NegotiatedDeflate?) {
        guard let deflate, deflate.serverNoContextTakeover, let bits = deflate.serverWindowBits else {
            self = .plain
            return
        }
        self.kind = .deflate(
            windowBits: bits, level: deflate.compressionLevel, minimumSize: deflate.minimumSizeToCompress)
    }

    private init(kind: Kind) {
        self.kind = kind
    }

    /// Whether frames of this encoding may be compressed.
    public var isCompressed: Bool { self.kind != .plain }

    public var description: String {
        switch self.kind {
        case .plain: "plain"
        case .deflate(let bits, let level, let minimum): "deflate(window \(bits), level \(level), from \(minimum) B)"
        }
    }
}
