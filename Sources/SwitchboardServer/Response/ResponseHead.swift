import HTTPTypes
import NIOCore

/// How a response body is framed on the wire.
enum BodyFraming: Equatable {
    /// No body follows (HEAD, 1xx, 204, 304, partial hijack).
    case none
    /// Exactly this many bytes follow, announced by `Content-Length`.
    case length(Int)
    /// `Transfer-Encoding: chunked`.
    case chunked
    /// The body runs until the connection closes (HTTP/1.0 without a length).
    case untilClose
}

/// Encodes a status line and header block straight into bytes, the way this server sends every head.
enum ResponseHead {
    /// Encodes `status` and `headers` into `buffer`.
    ///
    /// - Parameters:
    ///   - headers: The app's fields. `Content-Length`, `Transfer-Encoding` and `Connection` are written
    ///     from `framing` and `connection` instead, unless `verbatim` (a partial hijack) keeps the app's.
    ///   - contentLength: The `Content-Length` to announce, if any (it may differ from `framing` for HEAD).
    ///   - connection: The `Connection` value to send, if any.
    ///   - serverName: The `Server` value, added when the app set none.
    static func write(
        status: HTTPResponse.Status,
        headers: HTTPFields,
        contentLength: Int?,
        chunked: Bool,
        connection: String?,
        serverName: String?,
        verbatim: Bool,
        into buffer: inout ByteBuffer
    ) {
        buffer.writeStaticString("HTTP/1.1 ")
        self.writeStatus(status, into: &buffer)
        var hasDate = false
        var hasServer = false
        for field in headers {
            let name = field.name
            if !verbatim && (name == .contentLength || name == .transferEncoding || name == .connection) { continue }
            if name == .date { hasDate = true }
            if name == .server { hasServer = true }
            buffer.writeString(name.rawName)
            buffer.writeStaticString(": ")
            buffer.writeString(field.value)
            buffer.writeStaticString("\r\n")
        }
        if let contentLength {
            buffer.writeStaticString("Content-Length: ")
            buffer.writeString(String(contentLength))
            buffer.writeStaticString("\r\n")
        }
        if chunked { buffer.writeStaticString("Transfer-Encoding: chunked\r\n") }
        if let connection {
            buffer.writeStaticString("Connection: ")
            buffer.writeString(connection)
            buffer.writeStaticString("\r\n")
        }
        if !hasDate {
            buffer.writeStaticString("Date: ")
            buffer.writeString(HTTPDate.now())
            buffer.writeStaticString("\r\n")
        }
        if !hasServer, let serverName {
            buffer.writeStaticString("Server: ")
            buffer.writeString(serverName)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString("\r\n")
    }

    /// Room enough for the head of a response with `headers`: the status line and the fields the server adds
    /// (`Content-Length`, `Connection`, `Date`, `Server`) fit in the slack.
    static func estimatedSize(of headers: HTTPFields) -> Int {
        var size = 192
        for field in headers { size += field.name.rawName.utf8.count + field.value.utf8.count + 4 }
        return size
    }

    private static func writeStatus(_ status: HTTPResponse.Status, into buffer: inout ByteBuffer) {
        if status.code == 200 && (status.reasonPhrase == "OK" || status.reasonPhrase.isEmpty) {
            buffer.writeStaticString("200 OK\r\n")
            return
        }
        buffer.writeString(String(status.code))
        buffer.writeStaticString(" ")
        // A status made from an integer literal has no reason phrase; send the standard one.
        buffer.writeString(status.reasonPhrase.isEmpty ? Self.standardReason(status.code) : status.reasonPhrase)
        buffer.writeStaticString("\r\n")
    }

    /// The reason phrase RFC 9110 gives `code`, or an empty one (which HTTP/1.1 allows).
    static func standardReason(_ code: Int) -> String {
        switch code {
        case 100: "Continue"
        case 101: "Switching Protocols"
        case 200: "OK"
        case 201: "Created"
        case 202: "Accepted"
        case 204: "No Content"
        case 206: "Partial Content"
        case 301: "Moved Permanently"
        case 302: "Found"
        case 303: "See Other"
        case 304: "Not Modified"
        case 307: "Temporary Redirect"
        case 308: "Permanent Redirect"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 409: "Conflict"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 415: "Unsupported Media Type"
        case 417: "Expectation Failed"
        case 426: "Upgrade Required"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: ""
        }
    }
}
