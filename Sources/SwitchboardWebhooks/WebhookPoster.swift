import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SwitchboardLocks

/// Where webhooks go: an `http` or `https` URL.
public struct WebhookURL: Sendable, Hashable, CustomStringConvertible {
    public let isTLS: Bool
    public let host: String
    public let port: Int
    /// Path and query, `/` at least.
    public let target: String

    /// Parses `http(s)://host[:port][/path][?query]`; `nil` for anything else (no user info, no fragment).
    public init?(_ text: String) {
        let isTLS: Bool
        let rest: Substring
        if text.hasPrefix("https://") {
            (isTLS, rest) = (true, text.dropFirst(8))
        } else if text.hasPrefix("http://") {
            (isTLS, rest) = (false, text.dropFirst(7))
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let target = rest.dropFirst(authority.count)
        guard !authority.isEmpty, !authority.contains("@"), !target.contains("#"), text.utf8.count <= 2048,
            !text.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false })
        else { return nil }
        var host = String(authority)
        var port = isTLS ? 443 : 80
        if authority.hasPrefix("[") {
            // [IPv6]:port
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()), (1...65535).contains(value) else {
                    return nil
                }
                port = value
            }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let value = Int(authority[authority.index(after: colon)...]), (1...65535).contains(value) else {
                return nil
            }
            host = String(authority[..<colon])
            port = value
        }
        guard !host.isEmpty else { return nil }
        self.isTLS = isTLS
        self.host = host
        self.port = port
        self.target = target.isEmpty ? "/" : (target.hasPrefix("?") ? "/" + target : String(target))
    }

    public var description: String {
        let defaultPort = self.isTLS ? 443 : 80
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return
            "\(self.isTLS ? "https" : "http")://\(host)\(self.port == defaultPort ? "" : ":\(self.port)")\(self.target)"
    }
}

/// Why a webhook POST did not succeed.
struct WebhookPostError: Error, CustomStringConvertible {
    let description: String
}

/// POSTs one body to a URL on a connection of its own and returns the status, within a deadline for the whole
/// exchange (connect, TLS, request, response head). The response body is not read beyond what arrives with it.
struct WebhookPoster: Sendable {
    let group: any EventLoopGroup
    let tlsContext: NIOSSLContext?

    /// The TLS context is made once (the system's trust roots); if it cannot be, https URLs fail at each POST with
    /// the reason, and http URLs work.
    init(group: any EventLoopGroup) {
        self.group = group
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        do {
            self.tlsContext = try NIOSSLContext(configuration: tls)
            self.tlsProblem = nil
        } catch {
            self.tlsContext = nil
            self.tlsProblem = "\(error)"
        }
    }

    private let tlsProblem: String?

    /// The status of the answer to a POST of `body`.
    func post(_ body: ByteBuffer, to url: WebhookURL, headers: HTTPHeaders, timeout: TimeAmount) async throws -> Int {
        try await self.exchange(body, to: url, headers: headers, timeout: timeout).status
    }

    /// The status and body (at most ``maxResponseBytes``) of the answer to a POST of `body`.
    func exchange(
        _ body: ByteBuffer, to url: WebhookURL, headers: HTTPHeaders, timeout: TimeAmount
    ) async throws -> (status: Int, body: ByteBuffer) {
        if url.isTLS, let problem = self.tlsProblem {
            throw WebhookPostError(description: "TLS is unavailable: \(problem)")
        }
        let eventLoop = self.group.next()
        let status = eventLoop.makePromise(of: (status: Int, body: ByteBuffer).self)
        let deadline = eventLoop.scheduleTask(in: timeout) {
            status.fail(WebhookPostError(description: "no answer within \(timeout.nanoseconds / 1_000_000) ms"))
        }
        let tlsContext = self.tlsContext
        let connected = ClientBootstrap(group: eventLoop)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if url.isTLS, let tlsContext {
                        let handler = try NIOSSLClientHandler(
                            context: tlsContext, serverHostname: url.host.contains(":") ? nil : url.host)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseReader(answer: status))
                }
            }
            .connect(host: url.host, port: url.port)
        connected.whenFailure { status.fail($0) }
        connected.whenSuccess { channel in
            var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: url.target, headers: headers)
            let host = url.host.contains(":") ? "[\(url.host)]" : url.host
            head.headers.replaceOrAdd(name: "Host", value: host)
            head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
            head.headers.replaceOrAdd(name: "Connection", value: "close")
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil)).whenFailure { status.fail($0) }
        }
        // Whatever the outcome, the connection goes.
        status.futureResult.whenComplete { _ in
            deadline.cancel()
            connected.whenSuccess { $0.close(promise: nil) }
        }
        return try await status.futureResult.value()
    }
}

/// The most bytes of a response body kept; a longer one fails the exchange.
let maxResponseBytes = 64 * 1024

/// Completes the promise with the response's status and body, or fails it if the connection ends first.
private final class ResponseReader: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    let answer: EventLoopPromise<(status: Int, body: ByteBuffer)>
    private var status: Int?
    private var body = ByteBuffer()

    init(answer: EventLoopPromise<(status: Int, body: ByteBuffer)>) {
        self.answer = answer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            self.status = Int(head.status.code)
        case .body(var part):
            guard self.body.readableBytes + part.readableBytes <= maxResponseBytes else {
                self.answer.fail(WebhookPostError(description: "a response body over \(maxResponseBytes) bytes"))
                context.close(promise: nil)
                return
            }
            self.body.writeBuffer(&part)
        case .end:
            if let status = self.status { self.answer.succeed((status, self.body)) }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.answer.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.answer.fail(WebhookPostError(description: "the connection closed before a whole response"))
        context.fireChannelInactive()
    }
}
