public import HTTPTypes

/// An HTTP response: Rack's `[status, headers, body]` triple, or a partial hijack.
///
/// ```swift
/// Response(status: .ok, headers: [.contentType: "text/plain"], body: .init(string: "hello\n"))
///
/// // Partial hijack: the server writes the status line and headers, then hands over the socket.
/// Response(status: .ok, headers: [.contentLength: "5"]) { connection in
///     try await connection.write("hello")
///     try await connection.close()
/// }
/// ```
public struct Response: Sendable {
    /// The status. Servers send codes 100–599; ``Lint`` reports anything else.
    public var status: HTTPResponse.Status
    /// The header fields. The server adds `Date`, `Server` and the framing it chooses.
    public var headers: HTTPFields
    /// The body. Ignored, never read or written, for a partial hijack.
    public var body: ResponseBody
    /// The partial-hijack closure, if this response takes over the connection after its head.
    public var hijack: (@Sendable (HijackedConnection) async throws -> Void)?

    /// Creates an ordinary response.
    ///
    /// - Parameters:
    ///   - status: The status; `200 OK` by default.
    ///   - headers: The header fields.
    ///   - body: The body; empty by default.
    public init(status: HTTPResponse.Status = .ok, headers: HTTPFields = [:], body: ResponseBody = .empty) {
        self.status = status
        self.headers = headers
        self.body = body
        self.hijack = nil
    }

    /// Creates a partial-hijack response (Rack's `rack.hijack` response header).
    ///
    /// The server writes the status line and `headers` exactly, adding `Date` and `Server` but no
    /// `Content-Length`, `Transfer-Encoding` or `Connection` of its own, flushes them, and then calls
    /// `hijack` with the connection. From then on the connection belongs to the closure's code.
    ///
    /// - Parameters:
    ///   - status: The status; `101 Switching Protocols` for protocol upgrades.
    ///   - headers: The header fields to send.
    ///   - body: A body that the server never reads (kept so Rack-style apps port as written).
    ///   - hijack: Runs with the connection once the head is flushed.
    /// - Important: Only return this for a request whose ``Request/isHijackable`` is `true`.
    public init(
        status: HTTPResponse.Status,
        headers: HTTPFields = [:],
        body: ResponseBody = .empty,
        hijack: @escaping @Sendable (HijackedConnection) async throws -> Void
    ) {
        self.status = status
        self.headers = headers
        self.body = body
        self.hijack = hijack
    }
}

extension HTTPResponse.Status {
    /// Whether a response with this status never has a body (1xx, 204, 304; RFC 9110 §6.4.1).
    public var forbidsBody: Bool {
        (100..<200).contains(self.code) || self.code == 204 || self.code == 304
    }
}
