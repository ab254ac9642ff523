public import NIOCore

/// A complete WebSocket message.
///
/// The payload stays a `ByteBuffer`, so an echo or a relay never converts it; ``text`` decodes it on demand (text
/// messages were validated as UTF-8 on arrival).
public struct WebSocketMessage: Sendable, Equatable {
    /// Text or binary.
    public enum Kind: Sendable, Equatable {
        case text
        case binary
    }

    /// Whether the message is text or binary.
    public var kind: Kind
    /// The payload bytes (decompressed).
    public var data: ByteBuffer

    /// A text message.
    public static func text(_ text: String) -> WebSocketMessage {
        .init(kind: .text, data: ByteBuffer(string: text))
    }

    /// A binary message.
    public static func binary(_ data: ByteBuffer) -> WebSocketMessage {
        .init(kind: .binary, data: data)
    }

    /// Creates a message.
    public init(kind: Kind, data: ByteBuffer) {
        self.kind = kind
        self.data = data
    }

    /// The payload as a string (for text messages; a binary payload is decoded leniently).
    public var text: String { String(buffer: self.data) }
}

extension WebSocketMessage {
    /// A text message of `data` if it is valid UTF-8 (as text frames must be), else `nil`.
    public static func text(validating data: ByteBuffer) -> WebSocketMessage? {
        var validator = UTF8Validator()
        let valid = data.withUnsafeReadableBytes { validator.validate($0) } && validator.isComplete
        return valid ? WebSocketMessage(kind: .text, data: data) : nil
    }
}
