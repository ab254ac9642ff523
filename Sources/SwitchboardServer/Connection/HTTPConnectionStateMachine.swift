/// The timing and lifetime rules of one HTTP connection, free of I/O so they can be tested alone.
///
/// - Idle: no request in progress. The idle timeout runs; when it fires the connection closes quietly.
/// - Reading head: bytes of a request arrived but not its complete head. The head-read timeout runs from the
///   first byte, and later bytes do not extend it, so a slowloris client trickling a header is cut off.
/// - Busy: requests are being answered (several when the client pipelines). No timer: the app decides
///   how long a response takes.
/// - Closing: the connection is being closed.
///
/// A graceful-shutdown request (quiesce) closes an idle connection at once and a busy one after its
/// responses in flight.
struct HTTPConnectionStateMachine {
    enum State: Equatable {
        case idle
        case readingHead
        case busy(pendingResponses: Int, closeWhenDone: Bool)
        case closing
    }

    enum TimerAction: Equatable {
        /// Arm (or move) the timer to fire after the idle timeout.
        case armIdleTimer
        /// Arm the timer to fire after the head-read timeout.
        case armHeadTimer
        /// Stop the timer.
        case cancelTimer
        /// Nothing changes.
        case none
        /// Close the connection now.
        case close
    }

    enum TimeoutAction: Equatable {
        /// Close quietly: the client was idle.
        case closeIdle
        /// Answer `408 Request Timeout` and close: the client was slow to send a head.
        case closeSlowHead
        /// Stale timer; nothing to do.
        case none
    }

    private(set) var state: State = .idle

    /// A read batch ended. Bytes of a new request start the head-read clock.
    mutating func readCompleted() -> TimerAction {
        guard case .idle = self.state else { return .none }
        self.state = .readingHead
        return .armHeadTimer
    }

    /// A complete request head was decoded.
    mutating func receivedHead() -> TimerAction {
        switch self.state {
        case .idle, .readingHead:
            self.state = .busy(pendingResponses: 1, closeWhenDone: false)
            return .cancelTimer
        case .busy(let pending, let closeWhenDone):
            self.state = .busy(pendingResponses: pending + 1, closeWhenDone: closeWhenDone)
            return .none
        case .closing:
            return .none
        }
    }

    /// The last byte of a response was written.
    mutating func responseEnded() -> TimerAction {
        guard case .busy(let pending, let closeWhenDone) = self.state else { return .none }
        if pending > 1 {
            self.state = .busy(pendingResponses: pending - 1, closeWhenDone: closeWhenDone)
            return .none
        }
        if closeWhenDone {
            self.state = .closing
            return .close
        }
        self.state = .idle
        return .armIdleTimer
    }

    /// Graceful shutdown asks the connection to finish.
    mutating func quiesce() -> TimerAction {
        switch self.state {
        case .idle, .readingHead:
            self.state = .closing
            return .close
        case .busy(let pending, _):
            self.state = .busy(pendingResponses: pending, closeWhenDone: true)
            return .none
        case .closing:
            return .none
        }
    }

    /// The armed timer fired.
    mutating func timerFired() -> TimeoutAction {
        switch self.state {
        case .idle:
            self.state = .closing
            return .closeIdle
        case .readingHead:
            self.state = .closing
            return .closeSlowHead
        case .busy, .closing:
            return .none
        }
    }
}
