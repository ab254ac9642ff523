public import HTTPTypes
public import Logging
public import NIOCore

/// An HTTP request as an application sees it: Rack's `env`, typed.
///
/// A server creates one per request head and hands it to the ``Application``. Apps and middleware may
/// copy and change it (a router fills ``parameters``, a ``Builder`` mount moves a prefix from ``path``
/// to ``scriptName``); the body and the hijack capability travel with every copy.
///
/// ```swift
/// let app = AnyApplication { request in
///     let body = try await request.body.collect(upTo: 64 * 1024)
///     return Response(status: .ok, body: .init(buffer: body))
/// }
/// ```
public struct Request: Sendable {
    /// The request method.
    public var method: HTTPRequest.Method
    /// The request-target exactly as it appeared on the request line (`/a/b?x=1`).
    public var target: String
    /// The mount point this request was routed under (Rack's `SCRIPT_NAME`); empty at the top level.
    public var scriptName: String
    /// The path below ``scriptName`` (Rack's `PATH_INFO`), not percent-decoded; always starts with `/`.
    public var path: String
    /// The query string without its `?`, not decoded, or `nil` when the target has none.
    public var query: String?
    /// The HTTP version of the request line.
    public var version: HTTPVersion
    /// The header fields, in the order the client sent them.
    public var headers: HTTPFields
    /// The client's address: the peer of the socket, or, when the peer is a trusted proxy (a server's
    /// `trustedProxies`), the client it forwarded for (`X-Forwarded-For`).
    public var remoteAddress: SocketAddress?
    /// `http` or `https` as the client used it: the connection's own, or a trusted proxy's `X-Forwarded-Proto`.
    public var scheme: String = "http"
    /// The request body: a stream of bytes, read at most once.
    public var body: RequestBody
    /// Parameters captured by a ``Router`` pattern such as `/rooms/:name`.
    public var parameters: Parameters
    /// A logger carrying this request's metadata (connection and request ids). Libraries log through it.
    public var logger: Logger

    /// The connection's hijack capability, or `nil` for a request that did not come from a server.
    package let hijacker: (any RequestHijacker)?

    /// Creates a request, for tests and for servers.
    ///
    /// - Parameters:
    ///   - method: The request method.
    ///   - target: The raw request-target; ``path`` and ``query`` are derived from it.
    ///   - version: The HTTP version; HTTP/1.1 by default.
    ///   - headers: The header fields.
    ///   - body: The body; empty by default.
    ///   - remoteAddress: The peer's address, if any.
    ///   - logger: The request's logger; a no-op logger by default.
    public init(
        method: HTTPRequest.Method,
        target: String,
        version: HTTPVersion = .http1_1,
        headers: HTTPFields = [:],
        body: RequestBody = .empty,
        remoteAddress: SocketAddress? = nil,
        logger: Logger = Logger(label: "switchboard.request", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.init(
            method: method,
            target: target,
            version: version,
            headers: headers,
            body: body,
            remoteAddress: remoteAddress,
            logger: logger,
            hijacker: nil
        )
    }

    /// Creates a request that can be hijacked through `hijacker`; used by servers.
    package init(
        method: HTTPRequest.Method,
        target: String,
        version: HTTPVersion,
        headers: HTTPFields,
        body: RequestBody,
        remoteAddress: SocketAddress?,
        logger: Logger,
        hijacker: (any RequestHijacker)?
    ) {
        self.method = method
        self.target = target
        self.version = version
        self.headers = headers
        self.body = body
        self.remoteAddress = remoteAddress
        self.logger = logger
        self.hijacker = hijacker
        self.scriptName = ""
        self.parameters = Parameters()
        let (path, query) = Request.split(target: target)
        self.path = path
        self.query = query
    }

    /// Splits a request-target into path and query. An absolute-form target (`http://host/p`) keeps
    /// only its path; an asterisk-form or authority-form target (`*`, `host:443` for CONNECT) is
    /// given the path `/`, and stays available whole in ``target``.
    static func split(target: String) -> (path: String, query: String?) {
        var rest = Substring(target)
        if !rest.hasPrefix("/"), let colon = rest.firstIndex(of: ":"), rest[colon...].hasPrefix("://") {
            let afterScheme = rest[rest.index(colon, offsetBy: 3)...]
            rest = afterScheme.firstIndex(where: { $0 == "/" || $0 == "?" }).map { afterScheme[$0...] } ?? ""
        }
        let queryStart = rest.firstIndex(of: "?")
        let path = queryStart.map { rest[..<$0] } ?? rest
        let query = queryStart.map { String(rest[rest.index(after: $0)...]) }
        return (path.hasPrefix("/") ? String(path) : "/", query)
    }
}

extension Request {
    /// The `Host` header field, if present.
    public var host: String? { self.headers[.hostField] }

    /// Whether the client asked to keep the connection open after this request, following the
    /// HTTP/1.0 and HTTP/1.1 defaults and the `Connection` header's tokens.
    public var wantsKeepAlive: Bool {
        if self.version.major > 1 || (self.version.major == 1 && self.version.minor >= 1) {
            return !self.headers.hasToken("close", in: .connection)
        }
        return self.headers.hasToken("keep-alive", in: .connection)
    }
}

extension StringProtocol {
    /// The text without leading and trailing spaces and horizontal tabs (RFC 9110 OWS).
    package func trimmingHTTPWhitespace() -> SubSequence {
        let isWhitespace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = self.firstIndex(where: { !isWhitespace($0) }),
            let last = self.lastIndex(where: { !isWhitespace($0) })
        else { return self[self.endIndex...] }
        return self[first...last]
    }
}

extension HTTPFields {
    /// Whether the comma-separated list in the `name` fields holds `token`, compared case-insensitively.
    package func hasToken(_ token: String, in name: HTTPField.Name) -> Bool {
        self[values: name].contains { value in
            value.split(separator: ",").contains { $0.trimmingHTTPWhitespace().lowercased() == token }
        }
    }
}

extension HTTPField.Name {
    /// `Host`, which swift-http-types hides in favour of HTTP/2's `:authority`; HTTP/1.1 needs it.
    package static let hostField = HTTPField.Name("Host")!
}
