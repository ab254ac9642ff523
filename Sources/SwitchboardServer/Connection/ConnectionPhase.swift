import NIOCore

/// Where a connection is in its life, as the tasks that share it (connection loop, app, hijacker) see it.
struct ConnectionPhase: Sendable {
    enum Stage: Sendable, Equatable {
        /// The app is answering request `serial`; it may still hijack.
        case responding(serial: Int)
        /// The server is writing a response or waiting for the next request.
        case serving
        /// The app took the connection over.
        case hijacked
    }

    /// The state of the body of the request being answered.
    enum Body: Sendable, Equatable {
        /// More parts to come; `received` bytes so far.
        case streaming(received: Int)
        /// Its `.end` was read.
        case complete
        /// Reading it failed (too large, connection error); the connection must close.
        case failed
    }

    /// The `Expect: 100-continue` handshake of the current request.
    enum Continue: Sendable, Equatable {
        case notExpected
        /// The client waits for `100 Continue` before sending the body.
        case pending
        case sent
    }

    var stage: Stage = .serving
    var serial = 0
    var body: Body = .complete
    /// When the current request's body must have arrived whole (set at its first read).
    var bodyDeadline: NIODeadline?
    var expectation: Continue = .notExpected
    /// The server answered with an error before reading the whole request (a head or body over its limit, a
    /// malformed request): the client may still be sending.
    var refusedMidRequest = false

    /// Whether the client may still be sending when the server closes: then the close must linger, or unread bytes
    /// make the kernel reset the connection before the client reads the last response.
    var closesWithUnreadInput: Bool {
        self.refusedMidRequest || self.body != .complete
    }
    /// A hijacker installed protocol handlers: its byte view is closed, the bytes are theirs.
    var handlersInstalled = false
}
