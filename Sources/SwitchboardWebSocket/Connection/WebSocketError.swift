/// Why a WebSocket operation failed.
public struct WebSocketError: Error, Hashable, CustomStringConvertible {
    private enum Kind: Hashable {
        case closed
        case dropped
        case notHijackable
        case protocolViolation(UInt16, String)
    }

    private let kind: Kind

    /// The socket is closed (or closing): nothing more can be sent.
    public static let closed = WebSocketError(kind: .closed)
    /// The message was dropped: the peer does not read, and the slow-consumer policy drops what does not fit.
    public static let dropped = WebSocketError(kind: .dropped)
    /// The request's connection cannot be hijacked, so it cannot become a WebSocket.
    public static let notHijackable = WebSocketError(kind: .notHijackable)

    static func violation(_ violation: WebSocketProtocolViolation) -> WebSocketError {
        .init(kind: .protocolViolation(violation.code.rawValue, violation.reason))
    }

    public var description: String {
        switch self.kind {
        case .closed: "the WebSocket is closed"
        case .dropped: "the message was dropped: the peer does not read fast enough"
        case .notHijackable: "the request's connection cannot be hijacked for a WebSocket"
        case .protocolViolation(let code, let reason): "the peer broke the WebSocket protocol (\(code)): \(reason)"
        }
    }
}
