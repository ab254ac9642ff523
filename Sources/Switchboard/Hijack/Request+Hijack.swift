public import NIOCore

extension Request {
    /// Whether this request's connection can be hijacked now (Rack's `rack.hijack?`).
    ///
    /// `false` for requests that did not come from a socket, once a response for this request has
    /// started, and after a hijack.
    public var isHijackable: Bool {
        self.hijacker?.isHijackable ?? false
    }

    /// Whether the connection of this request was fully hijacked with ``hijack()``.
    public var isHijacked: Bool {
        self.hijacker?.isHijacked ?? false
    }

    /// The event loop of the request's connection: where a WebSocket or other hijacker of it will run; `nil` for a
    /// request that did not come from a server.
    public var eventLoop: (any EventLoop)? {
        self.hijacker?.eventLoop
    }

    /// Takes over the connection (a *full* hijack; Rack's `env["rack.hijack"].call`).
    ///
    /// The server writes nothing more on the connection, and ignores the response the app returns: it
    /// never reads, writes or closes that response's body. The app writes everything, status line
    /// included, and closes the connection when done.
    ///
    /// ```swift
    /// let connection = try await request.hijack()
    /// try await connection.write("HTTP/1.0 200 OK\r\n\r\nhello")
    /// try await connection.close()
    /// return Response(status: .internalServerError)   // ignored
    /// ```
    ///
    /// - Returns: The connection; see ``HijackedConnection`` for which bytes it delivers.
    /// - Throws: ``HijackError`` when ``isHijackable`` is `false`.
    public func hijack() async throws -> HijackedConnection {
        guard let hijacker else { throw HijackError.notSupported }
        return try await hijacker.hijack()
    }
}

/// Connects a ``Request`` to its server's hijack mechanism; implemented by servers.
package protocol RequestHijacker: Sendable {
    var isHijackable: Bool { get }
    var isHijacked: Bool { get }
    var eventLoop: any EventLoop { get }
    func hijack() async throws -> HijackedConnection
}

/// Why a hijack could not happen.
public struct HijackError: Error, Hashable, CustomStringConvertible {
    private enum Kind: Hashable {
        case notSupported
        case alreadyHijacked
        case responseStarted
        case connectionClosed
        case handlersInstalled
        case byteViewInUse
    }

    private let kind: Kind

    /// The request did not come from a server that supports hijacking.
    public static var notSupported: HijackError { .init(kind: .notSupported) }
    /// The connection was hijacked already.
    public static var alreadyHijacked: HijackError { .init(kind: .alreadyHijacked) }
    /// The server has started sending a response for this request, or moved on to a later one.
    public static var responseStarted: HijackError { .init(kind: .responseStarted) }
    /// The connection closed before or during the hijack.
    public static var connectionClosed: HijackError { .init(kind: .connectionClosed) }
    /// The byte view cannot be read after protocol handlers were installed: they receive the bytes.
    public static var handlersInstalled: HijackError { .init(kind: .handlersInstalled) }
    /// Handlers cannot be installed after the byte view was read: the bytes went to the reader.
    public static var byteViewInUse: HijackError { .init(kind: .byteViewInUse) }

    public var description: String {
        switch self.kind {
        case .notSupported: "this request cannot be hijacked"
        case .alreadyHijacked: "the connection was hijacked already"
        case .responseStarted: "the server has already started the response to this request"
        case .connectionClosed: "the connection is closed"
        case .handlersInstalled: "protocol handlers own this connection's bytes; read them there"
        case .byteViewInUse: "the connection's bytes are being read through the byte view"
        }
    }
}
