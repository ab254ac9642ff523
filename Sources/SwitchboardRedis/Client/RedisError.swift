/// Why a Redis command failed.
public struct RedisError: Error, Hashable, CustomStringConvertible {
    /// The kinds of failure.
    public enum Kind: Hashable, Sendable {
        /// Redis answered with an error reply (`-ERR …`, `-WRONGPASS …`, `-NOAUTH …`).
        case serverError
        /// No connection: connecting failed, it was lost, or it is being re-established.
        case connectionUnavailable
        /// The connection closed before the reply arrived; the command may or may not have run.
        case connectionClosed
        /// The reply did not come within the command timeout; the connection was closed.
        case timeout
        /// Too many commands were already waiting for replies.
        case tooManyPendingCommands
        /// The server sent bytes that are not RESP, or exceed the configured limits; the connection was closed.
        case protocolError
        /// The server answered with a reply of an unexpected shape.
        case unexpectedReply
    }

    /// What went wrong.
    public let kind: Kind
    /// The server's error text, or a description of the failure.
    public let message: String

    /// Creates an error.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The error code of a server error reply: its first word, such as `ERR`, `WRONGPASS` or `NOAUTH`.
    public var serverErrorCode: Substring? {
        guard self.kind == .serverError else { return nil }
        return self.message.split(separator: " ", maxSplits: 1).first
    }

    public var description: String {
        switch self.kind {
        case .serverError: "Redis error reply: \(self.message)"
        case .connectionUnavailable: "Redis unavailable: \(self.message)"
        case .connectionClosed: "Redis connection closed: \(self.message)"
        case .timeout: "Redis timeout: \(self.message)"
        case .tooManyPendingCommands: "Redis: \(self.message)"
        case .protocolError: "Redis protocol error: \(self.message)"
        case .unexpectedReply: "Redis: unexpected reply: \(self.message)"
        }
    }
}
