public import Logging
import NIOConcurrencyHelpers
public import NIOCore

/// One WebSocket connection: the seed's Tubesock, complete.
///
/// Get one from ``upgrade(_:configuration:setUp:)`` (callbacks, on the event loop) or
/// ``upgrade(_:configuration:run:)`` (async). Sending is safe from any thread; callbacks always run on
/// ``eventLoop``.
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
    let handler: NIOLoopBound<WebSocketHandler>
    /// The message sequence of the async API; `nil` for sockets driven by callbacks.
    let inbox: WebSocketInbox?

    init(handler: WebSocketHandler, eventLoop: any EventLoop, subprotocol: String?, logger: Logger, withInbox: Bool) {
        self.eventLoop = eventLoop
        self.subprotocol = subprotocol
        self.logger = logger
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
        self.inbox = withInbox ? WebSocketInbox() : nil
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
    /// On the event loop the message is queued at once; from another thread it is queued on the event loop soon
    /// after, in order.
    /// - Throws: ``WebSocketError/closed`` when called on the event loop after the socket closed. (A send from
    ///   another thread that finds the socket closed is dropped; use the `async` variant to learn of it.)
    public func send(text: String) throws {
        try self.send(.text(text))
    }

    /// Sends a binary message.
    ///
    /// - Throws: ``WebSocketError/closed``, as ``send(text:)``.
    public func send(binary: ByteBuffer) throws {
        try self.send(.binary(binary))
    }

    /// Sends `message`.
    ///
    /// - Throws: ``WebSocketError/closed``, as ``send(text:)``.
    public func send(_ message: WebSocketMessage) throws {
        if self.eventLoop.inEventLoop {
            try self.handler.value.send(message)
        } else {
            let handler = self.handler
            self.eventLoop.execute { try? handler.value.send(message) }
        }
    }

    /// Sends `message`, waiting until it is queued on the connection.
    ///
    /// - Throws: ``WebSocketError/closed`` if the socket is closed.
    public func send(_ message: WebSocketMessage) async throws {
        if self.eventLoop.inEventLoop {
            try self.handler.value.send(message)
            return
        }
        let handler = self.handler
        try await self.eventLoop.submit { try handler.value.send(message) }.get()
    }

    /// Sends a text message, waiting until it is queued.
    ///
    /// - Throws: ``WebSocketError/closed`` if the socket is closed.
    public func send(text: String) async throws {
        try await self.send(.text(text))
    }

    /// Sends a binary message, waiting until it is queued.
    ///
    /// - Throws: ``WebSocketError/closed`` if the socket is closed.
    public func send(binary: ByteBuffer) async throws {
        try await self.send(.binary(binary))
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

    func onLoop(_ body: @escaping @Sendable (WebSocketHandler) -> Void) {
        if self.eventLoop.inEventLoop {
            body(self.handler.value)
        } else {
            let handler = self.handler
            self.eventLoop.execute { body(handler.value) }
        }
    }
}
