import HTTPTypes
import Logging
import NIOCore
import NIOHTTP1
import Switchboard
import SwitchboardLocks
import Synchronization

/// One accepted connection: reads requests in order, runs the app for each, writes the responses in the
/// same order (so pipelining works), and hands the socket over when the app hijacks it.
///
/// The loop, the app's body reads and a hijacker share this object; ``phase`` is where they agree on
/// whose turn it is.
final class HTTPConnection: Sendable {
    let channel: any Channel
    let outbound: ConnectionIO
    let reader: InboundReader
    let phase = Locked(ConnectionPhase())
    let configuration: ServerConfiguration
    /// Where limits hit are counted (the server's).
    let counters: ServerCounters
    let logger: Logger
    let isShuttingDown: @Sendable () -> Bool
    /// The HTTP handlers that a hijack takes out of the pipeline.
    let httpHandlers: NIOLoopBoundBox<HTTPHandlers?>
    private let headParser: RequestHeadParser
    private let remoteAddress: SocketAddress?
    /// Rates the requests of clients behind a trusted proxy; `nil` in tests of the connection alone.
    private let limiter: ConnectionLimiter?

    init(
        channel: any Channel,
        io: ConnectionIO,
        httpHandlers: NIOLoopBoundBox<HTTPHandlers?>,
        configuration: ServerConfiguration,
        counters: ServerCounters = ServerCounters(),
        limiter: ConnectionLimiter? = nil,
        logger: Logger,
        isShuttingDown: @escaping @Sendable () -> Bool
    ) {
        self.counters = counters
        self.limiter = limiter
        self.channel = channel
        self.outbound = io
        self.reader = InboundReader(io)
        self.httpHandlers = httpHandlers
        self.configuration = configuration
        self.logger = logger
        self.isShuttingDown = isShuttingDown
        self.headParser = RequestHeadParser(
            maxHeaderCount: configuration.maxHeaderCount,
            maxBodySize: configuration.maxBodySize
        )
        self.remoteAddress = channel.remoteAddress
    }

    /// What happens after a request.
    enum Outcome {
        case keepAlive
        case close
        /// The app fully hijacked the connection.
        case hijacked
        /// The app returned a partial hijack.
        case partialHijack(PartialHijack)
    }

    /// Serves requests until the client or the server ends the connection, or the app takes it over.
    ///
    /// - Returns: Whether the connection was handed over to a hijacker whose code has returned while the socket
    ///   stays open (its protocol lives on in channel handlers). The caller then tracks the socket until it closes,
    ///   instead of keeping this task and its frames alive for the connection's lifetime.
    func serve(_ application: any Application) async -> Bool {
        do {
            while true {
                switch try await self.serveNextRequest(application) {
                case .keepAlive: continue
                case .close: return false
                case .hijacked: return true
                case .partialHijack(let handOver):
                    try await self.partiallyHijack(handOver)
                    return true
                }
            }
        } catch {
            self.logger.debug("connection failed", metadata: ["switchboard.error": "\(error)"])
            return false
        }
    }

    /// Serves one request; returns what happens next.
    private func serveNextRequest(_ application: any Application) async throws -> Outcome {
        let head: HTTPRequestHead
        do {
            switch try await self.reader.next() {
            case .head(let h): head = h
            case nil: return .close
            case .body, .end, .raw:
                self.logger.debug("unexpected part between requests")
                return .close
            }
        } catch let error as HTTPParserError {
            self.logger.debug("malformed request", metadata: ["switchboard.error": "\(error)"])
            switch error {
            case .headerOverflow: try await self.refuse(.requestHeaderFieldsTooLarge, reason: "request head too large")
            case .invalidVersion:
                try await self.refuse(.httpVersionNotSupported, reason: "only HTTP/1.0 and 1.1 are served")
            default: try await self.refuse(.badRequest, reason: "malformed request")
            }
            return .close
        }

        let parsed: RequestHeadParser.Parsed
        do {
            parsed = try self.headParser.parse(head)
        } catch {
            self.logger.debug("refused request", metadata: ["switchboard.reason": "\(error.reason)"])
            try await self.refuse(error.status, reason: error.reason)
            return .close
        }

        let forwarded = ForwardedHeaders(
            peer: self.remoteAddress, headers: parsed.headers, trusted: self.configuration.trustedProxies,
            isTLS: self.configuration.tls != nil)
        var logger = self.logger
        if forwarded.isProxied {
            // Logs and limits see the client, not the proxy.
            logger[metadataKey: "switchboard.client"] = "\(forwarded.client?.ipAddress ?? "?")"
            if let limiter = self.limiter, !limiter.admitForwarded(forwarded.client) {
                try await self.refuse(.serviceUnavailable, reason: ConnectionLimiter.Refusal.addressRate.message)
                return .close
            }
        }
        let isUpgradeOrConnect = head.isUpgradeOrConnect
        let serial = self.phase.withLock { phase in
            phase.serial += 1
            phase.stage = .responding(serial: phase.serial)
            phase.body = .streaming(received: 0)
            phase.bodyDeadline = nil
            phase.expectation = parsed.expectsContinue && (parsed.contentLength ?? 1) > 0 ? .pending : .notExpected
            return phase.serial
        }
        var request = Request(
            method: parsed.method,
            target: head.uri,
            version: parsed.version,
            headers: parsed.headers,
            body: RequestBody(
                source: RequestBodyReader(connection: self, serial: serial), expectedLength: parsed.contentLength),
            remoteAddress: forwarded.client,
            logger: logger,
            hijacker: ConnectionHijacker(connection: self, serial: serial)
        )
        request.scheme = forwarded.scheme

        let response = await self.respond(to: request, with: application)
        let hijacked = self.phase.withLock { phase in
            if phase.stage == .hijacked { return true }
            phase.stage = .serving
            return false
        }
        if hijacked {
            // A full hijack: the response is ignored, never read or closed; the socket is the app's now.
            return .hijacked
        }
        if let hijack = response.hijack {
            // The app had its turn to read the body; drop the rest so only post-request bytes reach the hijacker.
            guard try await self.discardUnreadBody() else {
                self.logger.debug("partial hijack refused: the request body could not be read to its end")
                try await self.refuse(.contentTooLarge, reason: "request body too large")
                return .close
            }
            return .partialHijack(PartialHijack(status: response.status, headers: response.headers, hijack: hijack))
        }
        // After an Upgrade or CONNECT head the parser has stopped: an app that declines must end the connection.
        var keepAlive = !isUpgradeOrConnect && self.keepsAlive(after: request, response: response)
        keepAlive = try await self.write(response, to: request, keepAlive: keepAlive) && keepAlive
        guard keepAlive, try await self.discardUnreadBody() else {
            try await self.flushThenFinish()
            return .close
        }
        return .keepAlive
    }

    /// Runs the app, turning thrown errors into responses.
    private func respond(to request: Request, with application: any Application) async -> Response {
        do {
            return try await application.respond(to: request)
        } catch let error as RequestBodyError {
            self.phase.withLock { $0.body = .failed }
            return error.response
        } catch let error as any HTTPResponseConvertible {
            return error.response
        } catch {
            if !request.isHijacked {
                // Libraries log at debug, but an app that throws is broken and its 500 says nothing.
                self.logger.error(
                    "application error",
                    metadata: ["switchboard.request.target": "\(request.target)", "switchboard.error": "\(error)"]
                )
            }
            return Response(status: .internalServerError, body: .init(string: "Internal Server Error\n"))
        }
    }

    /// Whether the connection can carry another request after this response.
    private func keepsAlive(after request: Request, response: Response) -> Bool {
        guard request.wantsKeepAlive, !self.isShuttingDown() else { return false }
        if response.headers.contains(.connection), response.headers.hasToken("close", in: .connection) { return false }
        return self.phase.withLock { phase in
            switch phase.body {
            case .complete: true
            case .failed: false
            // The client waits for `100 Continue` that never came: it may or may not send the body, so the
            // connection's framing is unknowable; close it.
            case .streaming: phase.expectation != .pending
            }
        }
    }

    /// Answers a refused or malformed request and marks the connection for closing.
    func refuse(_ status: HTTPResponse.Status, reason: String) async throws {
        self.phase.withLock { $0.refusedMidRequest = true }
        if status == .contentTooLarge || status == .requestHeaderFieldsTooLarge {
            self.counters.oversizedRequests.wrappingAdd(1, ordering: .relaxed)
        }
        var buffer = ByteBuffer()
        let body = reason + "\n"
        ResponseHead.write(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8"],
            contentLength: body.utf8.count,
            chunked: false,
            connection: "close",
            serverName: self.configuration.serverName,
            verbatim: false,
            into: &buffer
        )
        buffer.writeString(body)
        try await self.outbound.write(.responseEnd(buffer))
        try await self.flushThenFinish()
    }

    /// Waits until every byte written so far has gone to the socket, so closing loses none of it.
    func flushThenFinish() async throws {
        try await self.channel.writeAndFlush(ConnectionOutbound.bytes(ByteBuffer())).value()
    }

}
