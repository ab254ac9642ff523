public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import SwitchboardLocks
import Synchronization

/// One WebSocket connection: the seed's Tubesock, complete.
///
/// Get one from ``upgrade(_:configuration:setUp:)`` (callbacks, on the event loop) or
/// ``upgrade(_:configuration:run:)`` (async). Sending is safe from any thread and never waits; callbacks always run
/// on ``eventLoop``.
///
/// ```swift
/// router.get("/chat") { request in
///     WebSocket.upgrade(request) { socket in
///         socket.onMessage { socket, message in try? socket.send(message) }
///         socket.onClose { _, code, _ in print("closed", code) }
///     }
/// }
/// ```
public final class WebSocket: Sendable {
    /// The event loop the connection lives on; callbacks run here.
    public let eventLoop: any EventLoop
    /// The subprotocol agreed in the handshake, if any.
    public let subprotocol: String?
    /// The connection's logger.
    public let logger: Logger
    /// How prepared messages are framed for this socket, fixed by the handshake (see ``PreparedFrames``).
    public let frameEncoding: FrameEncoding
    let handler: NIOLoopBound<WebSocketHandler>
    /// The message sequence of the async API; `nil` for sockets driven by callbacks.
    let inbox: WebSocketInbox?
    /// Cleared (on the loop) when the socket stops accepting messages, so that a send from another thread can
    /// throw ``WebSocketError/closed`` at once instead of queueing for a closed socket.
    private let acceptsMessages = Atomic<Bool>(true)

    init(handler: WebSocketHandler, eventLoop: any EventLoop, subprotocol: String?, logger: Logger, withInbox: Bool) {
        self.eventLoop = eventLoop
        self.subprotocol = subprotocol
        self.logger = logger
        self.frameEncoding = FrameEncoding(handler.deflate)
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.inbox = withInbox ? WebSocketInbox() : nil
    }

    /// Whether the socket still accepts messages: `false` once it started closing (either side) or closed.
    public var isOpen: Bool { self.acceptsMessages.load(ordering: .relaxed) }

    func markNotOpen() {
        self.acceptsMessages.store(false, ordering: .relaxed)
    }

    // MARK: Callbacks (register on the event loop, in the set-up closure)

    /// Runs `callback` once the connection is open, before any message.
    ///
    /// - Important: Register callbacks in the set-up closure of ``upgrade(_:configuration:setUp:)``, which runs on
    ///   ``eventLoop``; registering elsewhere is a programming error.
    public func onOpen(_ callback: @escaping (WebSocket) -> Void) {
        self.handler.value.onOpen = callback
    }

    /// Runs `callback` for every message (text and binary), on the event loop. Messages then do not go to
    /// ``messages``.
    public func onMessage(_ callback: @escaping (WebSocket, WebSocketMessage) -> Void) {
        self.handler.value.onMessage = callback
    }

    /// Runs `callback` once when the connection ends, with the close code (1006 when it ended without a close
    /// handshake) and reason.
    ///
    /// Never from inside the app's own call: if the connection ends during a ``send(_:)`` or ``close(code:reason:)``
    /// (say, the write found the peer gone), `callback` runs on the event loop right after that call returns.
    public func onClose(_ callback: @escaping (WebSocket, WebSocketCloseCode, String) -> Void) {
        self.handler.value.onClose = callback
    }

    /// Runs `callback` when the connection fails: a protocol violation by the peer or an I/O error.
    public func onError(_ callback: @escaping (WebSocket, any Error) -> Void) {
        self.handler.value.onError = callback
    }

    // MARK: Sending (any thread)

    /// Sends a text message.
    ///
    /// Safe from any thread and never waits: on the event loop the message is queued on the connection at once;
    /// from another thread it is queued there soon after, in order with this thread's other sends. A message sent
    /// while the socket is closing may be lost, like any message in flight when a connection ends.
    ///
    /// - Throws: ``WebSocketError/closed`` if the socket is closing or closed.
    public func send(text: String) throws {
        try self.send(.text(text))
    }

    /// Sends a binary message; see ``send(text:)``.
    ///
    /// - Throws: ``WebSocketError/closed`` if the socket is closing or closed.
    public func send(binary: ByteBuffer) throws {
        try self.send(.binary(binary))
    }

    /// Sends `message`; see ``send(text:)``.
    ///
    /// - Throws: ``WebSocketError/closed`` if the socket is closing or closed.
    public func send(_ message: WebSocketMessage) throws {
        if self.eventLoop.inEventLoop {
            try self.handler.value.send(message)
        } else {
            try self.onLoopLater { handler in try handler.send(message) }
        }
    }

    /// Sends `message`; `written` succeeds once it has been written to the connection, and fails if it never will
    /// be (``WebSocketError/closed``, or ``WebSocketError/dropped`` by the slow-consumer policy). From any thread.
    public func send(_ message: WebSocketMessage, written: EventLoopPromise<Void>) {
        self.onLoop { handler in
            do {
                try handler.send(message, written: written)
            } catch {
                written.fail(error)
            }
        }
    }

    /// Sends `message` and waits until it has been written to the connection: for pacing a large transfer (a
    /// history, a file) by the peer's reading, so that it never piles up in memory or trips the slow-consumer limit.
    ///
    /// - Throws: ``WebSocketError/closed`` if the socket is closing or closed, or closes before the message is
    ///   written; ``WebSocketError/dropped`` if the slow-consumer policy dropped it.
    public func sendAndWait(_ message: WebSocketMessage) async throws {
        let written = self.eventLoop.makePromise(of: Void.self)
        self.send(message, written: written)
        do {
            try await written.futureResult.value()
        } catch let error as WebSocketError {
            throw error
        } catch {
            throw WebSocketError.closed  // the write failed: the connection went away
        }
    }

    /// Sends a ping (the peer answers with a pong).
    public func ping() {
        self.onLoop { try? $0.ping() }
    }

    /// Starts the closing handshake; the connection closes when the peer answers, or after the close timeout.
    ///
    /// - Parameters:
    ///   - code: The close code; 1000 by default.
    ///   - reason: A short reason (at most 123 bytes are sent).
    public func close(code: WebSocketCloseCode = .normalClosure, reason: String = "") {
        self.onLoop { $0.close(code: code, reason: reason) }
    }

    /// Closes the connection for a policy reason (the peer floods or abuses): sends the close frame and closes TCP once
    /// it is written, reading nothing more from the peer. From any thread.
    ///
    /// - Parameters:
    ///   - code: The close code, such as 1008 (policy violation) or an application's 4xxx.
    ///   - reason: A short reason (at most 123 bytes are sent).
    public func drop(code: WebSocketCloseCode, reason: String = "") {
        self.onLoop { $0.drop(code: code, reason: reason) }
    }

    func onLoop(_ body: @escaping @Sendable (WebSocketHandler) -> Void) {
        if self.eventLoop.inEventLoop {
            body(self.handler.value)
        } else {
            let handler = self.handler
            self.eventLoop.execute { body(handler.value) }
        }
    }

    /// Runs a send on the loop, from another thread: throws at once if the socket no longer accepts messages.
    func onLoopLater(_ body: @escaping @Sendable (WebSocketHandler) throws -> Void) throws {
        guard self.isOpen else { throw WebSocketError.closed }
        let handler = self.handler
        self.eventLoop.execute { try? body(handler.value) }
    }
}

/// Something told when a socket's connection ends: the fan-out engine's memberships, which must leave their topic
/// however the socket closed.
package protocol WebSocketCloseObserver: AnyObject {
    /// Called once on the socket's event loop, after `onClose`.
    func webSocketDidClose()
}

extension WebSocket {
    /// Tells `observer` when the connection ends; call on ``eventLoop``.
    ///
    /// - Returns: `false` (and `observer` is not kept) when the connection has ended already.
    package func addCloseObserver(_ observer: any WebSocketCloseObserver) -> Bool {
        let handler = self.handler.value
        guard !handler.isFinished else { return false }
        handler.closeObservers.append(observer)
        return true
    }

    /// Stops telling `observer`; call on ``eventLoop``.
    package func removeCloseObserver(_ observer: any WebSocketCloseObserver) {
        self.handler.value.closeObservers.removeAll { $0 === observer }
    }
}
