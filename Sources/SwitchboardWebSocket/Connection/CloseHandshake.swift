/// The closing handshake of RFC 6455 §7 as a pure state machine: for each event, what the connection must do.
///
/// The handler owns one and performs the actions it returns; nothing here touches a channel, so every path is tested
/// without one. The code and reason it records are what the connection reports to `onClose`.
struct CloseHandshake {
    enum State: Equatable {
        case open
        /// We sent a close frame and wait for the peer's.
        case closeSent
        /// No more frames either way.
        case closed
    }

    private(set) var state: State = .open
    /// The close code to report: the peer's, ours, or the failure's.
    private(set) var code: WebSocketCloseCode?
    /// The close reason to report.
    private(set) var reason = ""

    /// Whether messages may be sent, and received messages delivered to the app.
    var isOpen: Bool { self.state == .open }

    /// Whether frames are still read (after our close frame, the peer's data is read to reach its close frame).
    var readsFrames: Bool { self.state != .closed }

    // MARK: Events

    /// What to do when the peer's close frame arrives.
    enum PeerCloseAction: Equatable {
        /// Echo its code (`nil`: an empty close payload, as the peer sent), then close TCP: the server closes the
        /// connection first (§7.1.1).
        case echoThenCloseTCP(WebSocketCloseCode?)
        /// The peer answered our close frame: the handshake is complete; close TCP.
        case closeTCP
        /// Already closed: ignore it.
        case ignore
    }

    /// The peer sent a close frame with `code` (`nil` for an empty payload) and `reason`.
    mutating func peerClosed(code: WebSocketCloseCode?, reason: String) -> PeerCloseAction {
        switch self.state {
        case .open:
            self.finish(code: code ?? .noStatusReceived, reason: reason)
            return .echoThenCloseTCP(code)
        case .closeSent:
            self.finish(code: code ?? .noStatusReceived, reason: reason)
            return .closeTCP
        case .closed:
            return .ignore
        }
    }

    /// What to do when this side starts closing (the app, a graceful shutdown, an idle timeout).
    enum StartAction: Equatable {
        /// Send a close frame with this code and reason and wait (at most the close timeout) for the peer's.
        case sendClose(WebSocketCloseCode, String)
        /// Already closing or closed.
        case ignore
    }

    /// This side starts the closing handshake.
    mutating func startClosing(code: WebSocketCloseCode, reason: String) -> StartAction {
        guard self.state == .open else { return .ignore }
        self.state = .closeSent
        self.code = code
        self.reason = reason
        return .sendClose(code, reason)
    }

    /// What to do when the connection must end without waiting for the peer.
    enum FailAction: Equatable {
        /// Send a close frame with this code and reason, then close TCP (§7.1.7).
        case sendCloseThenCloseTCP(WebSocketCloseCode, String)
        /// A close frame was already sent: just close TCP.
        case closeTCP
    }

    /// The peer broke the protocol (§7.1.7): the close frame carries the code only, since the reason is for our log.
    mutating func peerFailed(code: WebSocketCloseCode, reason: String) -> FailAction {
        let wasOpen = self.state == .open
        self.finish(code: code, reason: reason)
        return wasOpen ? .sendCloseThenCloseTCP(code, "") : .closeTCP
    }

    /// The peer stopped answering (a keepalive timeout): the close frame carries code and reason for the record.
    mutating func peerUnresponsive(code: WebSocketCloseCode, reason: String) -> FailAction? {
        guard self.state != .closed else { return nil }
        self.finish(code: code, reason: reason)
        return .sendCloseThenCloseTCP(code, reason)
    }

    /// The peer does not read and its queue is full: no close frame can reach it, so TCP is closed at once.
    mutating func droppedSlowConsumer(code: WebSocketCloseCode) {
        self.finish(code: code, reason: "slow consumer")
    }

    /// The connection ended: the code and reason to report (1006 when no close handshake decided one).
    mutating func connectionEnded() -> (code: WebSocketCloseCode, reason: String) {
        self.state = .closed
        return (self.code ?? .abnormalClosure, self.reason)
    }

    private mutating func finish(code: WebSocketCloseCode, reason: String) {
        self.state = .closed
        self.code = code
        self.reason = reason
    }
}
