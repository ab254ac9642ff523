import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Switchboard
import SwitchboardLocks
import Synchronization

/// The HTTP handlers that a hijack takes out of a connection's pipeline.
typealias HTTPHandlers = (gate: HalfCloseGate, decoder: any RemovableChannelHandler, connection: HTTPConnectionHandler)

/// An accepted socket, its pipeline set up: the channel, its async handle and the handlers a hijack removes.
struct AcceptedConnection: Sendable {
    let channel: any Channel
    let io: ConnectionIO
    let httpHandlers: NIOLoopBoundBox<HTTPHandlers?>
}

extension Server {
    /// Binds the listening socket. Each accepted socket gets its pipeline here, on its event loop:
    /// `[HalfCloseGate] → [HTTP decoder] → [HTTPConnectionHandler] → [ConnectionBridgeHandler]`. Responses are encoded by the
    /// connection loop itself, so there is no encoder to remove at a hijack.
    func bind() async throws -> NIOAsyncChannel<AcceptedConnection?, Never> {
        let configuration = self.configuration
        let logger = self.logger
        let limiter = self.limiter
        let counters = self.counters
        return try await ServerBootstrap(group: self.eventLoopGroup)
            .serverChannelOption(.backlog, value: configuration.backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = AcceptErrorHandler(logger: logger) {
                        counters.acceptFailures.wrappingAdd(1, ordering: .relaxed)
                    }
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // Each channel keeps its receive buffer between reads. Starting at 256 bytes (not NIO's 2048) keeps idle
            // connections small; the allocator grows the buffer for connections that read more.
            .childChannelOption(
                .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65536)
            )
            .bind(host: configuration.host, port: configuration.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = configuration.tls {
                        // TLS has no half-close: a client's close_notify ends the connection. With half-closure on,
                        // NIOSSL would report it as end of input and leave its own close waiting for the 5 s timeout.
                        try channel.syncOptions?.setOption(.allowRemoteHalfClosure, value: false)
                        // Below everything, a refusal's 503 included; a hijacker's bytes go through it too.
                        try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls.context))
                    }
                    let address = channel.remoteAddress
                    switch limiter.admit(address) {
                    case .admitted:
                        // Given back by `unregister` (no close callback per connection: idle sockets stay small).
                        return try Self.configureHTTPPipeline(
                            channel, configuration: configuration, counters: counters, logger: logger)
                    case .refused(let refusal):
                        // Answered here, before any app sees it: no task, no HTTP handlers.
                        let lingerTime = limiter.lingerTime(until: channel.closeFuture)
                        let refusing = LingeringCloseHandler.refusing(with: refusal.message, lingerTime: lingerTime)
                        try channel.pipeline.syncOperations.addHandler(refusing)
                        return nil
                    }
                }
            }
    }

    /// Adds the HTTP handlers to `channel` and wraps it; runs on the channel's event loop.
    static func configureHTTPPipeline(
        _ channel: any Channel,
        configuration: ServerConfiguration,
        counters: ServerCounters,
        logger: Logger
    ) throws -> AcceptedConnection {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderListSize = configuration.maxHeadSize
        limits.maxHeaderFieldSize = configuration.maxHeadSize
        // One more than we accept, so that we answer 431 with our own reason rather than the parser's error.
        limits.maxHeaderFieldCount = configuration.maxHeaderCount + 1
        let decoder = ByteToMessageHandler(
            HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: limits)
        )
        let gate = HalfCloseGate()
        let connectionHandler = HTTPConnectionHandler(
            idleTimeout: configuration.idleTimeout,
            headReadTimeout: configuration.headReadTimeout,
            halfCloseGate: gate,
            logger: logger
        ) {
            counters.headReadTimeouts.wrappingAdd(1, ordering: .relaxed)
        }
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(gate)
        try pipeline.addHandler(decoder)
        try pipeline.addHandler(connectionHandler)
        let bridge = ConnectionBridgeHandler(writeTimeout: configuration.writeTimeout) {
            counters.writeTimeouts.wrappingAdd(1, ordering: .relaxed)
        }
        try pipeline.addHandler(bridge)
        let handlers: HTTPHandlers = (gate, decoder, connectionHandler)
        return AcceptedConnection(
            channel: channel,
            io: ConnectionIO(eventLoop: channel.eventLoop, bridge: NIOLoopBound(bridge, eventLoop: channel.eventLoop)),
            httpHandlers: NIOLoopBoundBox(handlers, eventLoop: channel.eventLoop)
        )
    }

    /// Serves one accepted connection until it closes.
    func serve(_ accepted: AcceptedConnection) async {
        let channel = accepted.channel
        var logger = self.logger
        // Only the debug-level messages of this library use the id; at other levels it would cost every (possibly
        // long-lived) connection a metadata dictionary for nothing.
        if logger.logLevel <= .debug { logger[metadataKey: "switchboard.connection.id"] = "\(self.makeConnectionID())" }
        logger.debug(
            "connection accepted", metadata: ["switchboard.peer": "\(channel.remoteAddress.map { "\($0)" } ?? "?")"])
        guard self.register(channel) else {
            self.limiter.release(channel.remoteAddress)
            channel.close(promise: nil)
            return
        }
        let connection = HTTPConnection(
            channel: channel,
            io: accepted.io,
            httpHandlers: accepted.httpHandlers,
            configuration: self.configuration,
            counters: self.counters,
            limiter: self.limiter,
            logger: logger,
            isShuttingDown: { self.isShuttingDown }
        )
        let handedOver = await withTaskCancellationHandler {
            await connection.serve(self.application)
        } onCancel: {
            channel.close(promise: nil)
        }
        if handedOver && channel.isActive {
            // The hijacker's code has returned and its protocol lives on in the channel's handlers (a WebSocket,
            // say). The server never closes it; it stays registered, so graceful shutdown still reaches it and
            // `run()` still waits for it, but no task waits here, so the task's memory is freed now.
            connection.retireHijackRelay()
            let closedLogger = logger
            channel.closeFuture.whenComplete { _ in
                self.unregister(channel)
                closedLogger.debug("hijacked connection closed")
            }
            logger.debug("connection handed over to its hijacker")
            return
        }
        // The connection task owns the socket unless it was handed over: the socket closes with it, after lingering
        // if the client may still be sending (so its last response is not lost to a reset).
        if !handedOver {
            if channel.isActive, connection.phase.withLock({ $0.closesWithUnreadInput }) {
                await Self.closeLingering(channel, for: Self.lingerTime)
            } else {
                try? await channel.close()
            }
        }
        // Only now: a lingering connection still holds its descriptor, so it counts under the caps until it closes.
        self.unregister(channel)
        logger.debug("connection closed")
    }

    /// How long in all a connection closed mid-request waits for its client to close while the client still sends; it
    /// closes after 2 s without a read (nginx: 30 s in all, 5 s per read).
    static let lingerTime = TimeAmount.seconds(10)

    /// Closes `channel` gracefully: its last response out, its side closed for writing, then whatever the client
    /// still sends read and dropped until it closes too or `lingerTime` passes.
    static func closeLingering(_ channel: any Channel, for lingerTime: TimeAmount) async {
        let added = channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(
                LingeringCloseHandler(lingerTime: lingerTime), position: .first)
        }
        do {
            try await added.value()
            try? await channel.closeFuture.value()
        } catch {
            try? await channel.close()
        }
    }
}
