import HTTPTypes
import Logging
import NIOCore
public import Switchboard

extension WebSocket {
    /// Answers a WebSocket handshake with `101 Switching Protocols` and runs `setUp` with the socket (Tubesock's
    /// `hijack do |tubesock| … end`).
    ///
    /// `setUp` runs on the connection's event loop before any message is read: register ``onMessage(_:)`` and the
    /// other callbacks there. Works from any app, router or middleware stack, on any request of a keep-alive
    /// connection. A request that is not a valid handshake gets an ordinary error response instead: 400 with the
    /// reason, 426 for another protocol version, 403 for an origin not allowed.
    ///
    /// - Parameters:
    ///   - request: The handshake request.
    ///   - configuration: Limits, keepalive, subprotocols, origins and compression.
    ///   - setUp: Registers callbacks on the new socket.
    /// - Returns: The response to return from the app.
    public static func upgrade(
        _ request: Request,
        configuration: WebSocketConfiguration = .init(),
        setUp: @escaping @Sendable (WebSocket) -> Void
    ) -> Response {
        self.makeUpgrade(request, configuration: configuration, opensInbox: false) { socket in
            setUp(socket)
        } run: { _ in
        }
    }

    /// Answers a WebSocket handshake and runs `run` with the socket, for code that reads messages with
    /// `for try await message in socket.messages`.
    ///
    /// When `run` returns, the socket is closed with 1000 (if still open). Errors it throws close with 1011.
    ///
    /// - Parameters:
    ///   - request: The handshake request.
    ///   - configuration: Limits, keepalive, subprotocols, origins and compression.
    ///   - run: The connection's code.
    /// - Returns: The response to return from the app.
    public static func upgrade(
        _ request: Request,
        configuration: WebSocketConfiguration = .init(),
        run: @escaping @Sendable (WebSocket) async throws -> Void
    ) -> Response {
        self.makeUpgrade(request, configuration: configuration, opensInbox: true) { _ in
        } run: { socket in
            do {
                try await run(socket)
                socket.close()
            } catch {
                socket.logger.debug("websocket handler failed", metadata: ["switchboard.error": "\(error)"])
                socket.close(code: .internalError, reason: "")
            }
        }
    }

    private static func makeUpgrade(
        _ request: Request,
        configuration: WebSocketConfiguration,
        opensInbox: Bool,
        setUp: @escaping @Sendable (WebSocket) -> Void,
        run: @escaping @Sendable (WebSocket) async -> Void
    ) -> Response {
        let accepted: WebSocketHandshake.Accepted
        do {
            accepted = try WebSocketHandshake.accept(request, configuration: configuration)
        } catch {
            request.logger.debug("websocket handshake refused", metadata: ["switchboard.reason": "\(error.message)"])
            return error.response
        }
        guard request.isHijackable else {
            return HTTPError(.internalServerError, "\(WebSocketError.notHijackable)").response
        }
        let logger = request.logger
        return Response(status: .switchingProtocols, headers: accepted.headers) { connection in
            let channel = connection.channel
            let socketBox = SocketBox()
            try await connection.installHandlers {
                let handler = WebSocketHandler(configuration: configuration, deflate: accepted.deflate, logger: logger)
                let socket = WebSocket(
                    handler: handler, eventLoop: channel.eventLoop, subprotocol: accepted.subprotocol, logger: logger,
                    withInbox: opensInbox)
                handler.socket = socket
                socket.inbox?.open(handler: socket.handler, eventLoop: channel.eventLoop)
                setUp(socket)
                socketBox.socket = socket
                return [handler]
            }
            if let socket = socketBox.socket { await run(socket) }
        }
    }
}

/// Carries the socket made on the event loop back to the hijack closure.
private final class SocketBox: @unchecked Sendable {
    // @unchecked Sendable is sound: `socket` is written once inside `installHandlers`' closure and read only after
    // `installHandlers` returned, whose event-loop hop orders the write before the read.
    var socket: WebSocket?
}
