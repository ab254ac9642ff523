import Crypto
import HTTPTypes
import Switchboard

/// The server side of the opening handshake (RFC 6455 §4.2): checks the client's request and computes the
/// response headers.
struct WebSocketHandshake {
    /// The GUID of RFC 6455 §1.3, appended to the key before hashing.
    static let guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    /// An accepted handshake: the response headers and what was agreed.
    struct Accepted {
        var headers: HTTPFields
        var subprotocol: String?
        var deflate: NegotiatedDeflate?
    }

    /// Checks `request`; returns the 101 headers, or throws the error response to send instead.
    static func accept(_ request: Request, configuration: WebSocketConfiguration) throws(HTTPError) -> Accepted {
        guard request.method == .get else { throw HTTPError(.badRequest, "WebSocket handshake must be GET") }
        guard request.version.major > 1 || (request.version.major == 1 && request.version.minor >= 1) else {
            throw HTTPError(.badRequest, "WebSocket handshake needs HTTP/1.1")
        }
        guard request.host != nil else { throw HTTPError(.badRequest, "WebSocket handshake without Host") }
        guard request.headers.hasToken("websocket", in: .upgrade) else {
            throw HTTPError(.badRequest, "WebSocket handshake without Upgrade: websocket")
        }
        guard request.headers.hasToken("upgrade", in: .connection) else {
            throw HTTPError(.badRequest, "WebSocket handshake without the upgrade token in Connection")
        }
        let versions = request.headers[values: .secWebSocketVersion]
        guard versions.count == 1, versions[0].trimmingHTTPWhitespace() == "13" else {
            throw HTTPError(.upgradeRequired, "WebSocket version 13 only", headers: [.secWebSocketVersion: "13"])
        }
        let keys = request.headers[values: .secWebSocketKey]
        guard keys.count == 1, let key = Optional(keys[0].trimmingHTTPWhitespace()),
            Base64.decode(key)?.count == 16
        else { throw HTTPError(.badRequest, "Sec-WebSocket-Key must be the base64 of 16 bytes") }
        if let origin = request.headers[.origin] {
            // A browser: it must come from an allowed page (no cross-site WebSocket hijacking).
            guard configuration.allowedOrigins.isEmpty || configuration.allowedOrigins.contains(origin) else {
                throw HTTPError(.forbidden, "origin not allowed")
            }
        } else if configuration.requiresOrigin {
            throw HTTPError(.forbidden, "an Origin header is required")
        }

        var headers: HTTPFields = [
            .upgrade: "websocket",
            .connection: "Upgrade",
            .secWebSocketAccept: self.acceptValue(for: String(key)),
        ]
        let offered = request.headers[values: .secWebSocketProtocol]
            .flatMap { $0.split(separator: ",") }
            .map { String($0.trimmingHTTPWhitespace()) }
        let subprotocol = configuration.subprotocols.first { offered.contains($0) }
        if let subprotocol { headers[.secWebSocketProtocol] = subprotocol }
        var deflate: NegotiatedDeflate?
        if let compression = configuration.compression {
            deflate = PerMessageDeflateNegotiation.negotiate(
                offers: request.headers[values: .secWebSocketExtensions],
                configuration: compression
            )
            if let deflate { headers[.secWebSocketExtensions] = deflate.responseHeader }
        }
        return Accepted(headers: headers, subprotocol: subprotocol, deflate: deflate)
    }

    /// `Sec-WebSocket-Accept`: base64(SHA-1(key + GUID)).
    static func acceptValue(for key: String) -> String {
        Base64.encode(Insecure.SHA1.hash(data: Array((key + self.guid).utf8)))
    }
}
