public import NIOCore
public import SwitchboardWebSocket

/// Anything that receives a topic's messages on an event loop: what an app attaches to a topic when a plain socket
/// is not enough (a socket with protocol state of its own, a log, a test probe).
///
/// Sinks with equal ``frameEncoding`` share the frames the engine resolves for a delivery, so a sink that writes to
/// a socket should return the socket's encoding. The engine calls a sink only on its ``eventLoop``, in topic order.
public protocol TopicSink: AnyObject {
    /// The loop the sink lives on; every call comes on it.
    var eventLoop: any EventLoop { get }

    /// The encoding the sink's frames are resolved for; ``FrameEncoding/plain`` unless it writes to a socket.
    var frameEncoding: FrameEncoding { get }

    /// Messages of the membership's topic, in order (several when the loop caught up on a backlog).
    func receive(_ frames: PreparedFrames, from membership: TopicMembership)

    /// Messages of the topic may have been lost here (the broker lost Redis for a while, or this loop's backlog was
    /// full); messages after the gap follow as usual.
    func receiveGap(from membership: TopicMembership)
}

extension TopicSink {
    /// Plain frames.
    public var frameEncoding: FrameEncoding { .plain }
}

/// What a socket attached to a topic is told when messages may have been lost.
public struct TopicGapPolicy: Sendable {
    enum Kind {
        case ignore
        case close(WebSocketCloseCode, String)
        case send(PreparedMessage)
    }

    let kind: Kind

    /// Nothing: the socket just goes on receiving (for data where the next message supersedes the last).
    public static let ignore = TopicGapPolicy(kind: .ignore)

    /// Close the socket, so its client reconnects and re-reads whatever state it shows.
    ///
    /// - Parameters:
    ///   - code: The close code; 1013 (try again later) by default.
    ///   - reason: The close reason.
    public static func close(
        code: WebSocketCloseCode = .tryAgainLater, reason: String = "messages may have been lost; reconnect"
    ) -> TopicGapPolicy {
        TopicGapPolicy(kind: .close(code, reason))
    }

    /// Send the socket this message (a protocol's own "you missed something" notice), then carry on.
    public static func send(_ message: WebSocketMessage) -> TopicGapPolicy {
        TopicGapPolicy(kind: .send(PreparedMessage(message)))
    }
}
