import NIOCore

/// Prepared messages resolved for one ``FrameEncoding``: the frames a fan-out writes, unchanged, to every socket
/// with that encoding.
///
/// Resolving takes at most one lock per message (for a compressed encoding; none for ``FrameEncoding/plain``), so a
/// fan-out that makes one `PreparedFrames` per encoding and event loop costs nothing per recipient but the write.
///
/// ```swift
/// let frames = PreparedFrames(batch, encoding: .plain)
/// for socket in sockets where socket.frameEncoding == .plain { try? socket.send(frames) }
/// ```
public struct PreparedFrames: Sendable {
    /// The encoding the frames are resolved for.
    public let encoding: FrameEncoding
    /// The messages, in order.
    public let messages: [PreparedMessage]
    /// Their frames, in the same order.
    let frames: [ByteBuffer]

    /// Resolves `messages` for `encoding`.
    public init(_ messages: [PreparedMessage], encoding: FrameEncoding) {
        self.encoding = encoding
        self.messages = messages
        self.frames = messages.map { $0.frame(for: encoding) }
    }

    private init(encoding: FrameEncoding, messages: [PreparedMessage], frames: [ByteBuffer]) {
        self.encoding = encoding
        self.messages = messages
        self.frames = frames
    }

    /// Whether there are no messages.
    public var isEmpty: Bool { self.messages.isEmpty }

    /// The number of messages.
    public var count: Int { self.messages.count }

    /// The bytes the frames occupy on the wire.
    public var wireSize: Int { self.frames.reduce(0) { $0 + $1.readableBytes } }

    /// The messages `isIncluded` accepts, in order, with their frames (nothing is resolved again).
    public func filter(_ isIncluded: (PreparedMessage) throws -> Bool) rethrows -> PreparedFrames {
        var messages: [PreparedMessage] = []
        var frames: [ByteBuffer] = []
        for (message, frame) in zip(self.messages, self.frames) where try isIncluded(message) {
            messages.append(message)
            frames.append(frame)
        }
        return PreparedFrames(encoding: self.encoding, messages: messages, frames: frames)
    }

    /// The same messages resolved for `encoding`.
    func resolved(for encoding: FrameEncoding) -> PreparedFrames {
        PreparedFrames(self.messages, encoding: encoding)
    }
}
