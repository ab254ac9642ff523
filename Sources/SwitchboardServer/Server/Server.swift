public import Logging
public import NIOCore
import NIOHTTP1
public import NIOPosix
public import ServiceLifecycle
public import Switchboard
import SwitchboardLocks
import Synchronization

/// The HTTP/1.1 server: serves an ``Switchboard/Application`` on a TCP port, with keep-alive,
/// pipelining, chunked bodies, limits, timeouts and connection hijack.
///
/// It is a swift-service-lifecycle `Service`: run it in a `ServiceGroup`, which ends it gracefully on
/// SIGINT or SIGTERM. Graceful shutdown stops accepting, lets in-flight requests finish, closes idle
/// connections, and leaves hijacked connections to their hijackers (which can observe the shutdown: as a task
/// through swift-service-lifecycle, as channel handlers through `ChannelShouldQuiesceEvent`). `run()` returns
/// once every connection, hijacked ones included, has closed.
///
/// ```swift
/// let server = Server(application: app, configuration: .init(port: 8080), logger: logger)
/// let group = ServiceGroup(configuration: .init(
///     services: [server], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// ```
public final class Server: Service {
    let application: any Application
    let configuration: ServerConfiguration
    let eventLoopGroup: any EventLoopGroup
    let logger: Logger
    let state = Locked(State())
    private let nextConnectionID = Atomic<Int>(0)
    /// Open connections against ``ServerConfiguration/maxConnections`` and its per-address limit.
    let limiter: ConnectionLimiter
    let counters = ServerCounters()

    struct State {
        var shuttingDown = false
        var address: SocketAddress?
        var addressWaiters: [CheckedContinuation<SocketAddress, any Error>] = []
        var failed: (any Error)?
        var connections: [ObjectIdentifier: any Channel] = [:]
    }

    /// Creates a server.
    ///
    /// - Parameters:
    ///   - application: The app to serve.
    ///   - configuration: Address, limits and timeouts.
    ///   - eventLoopGroup: The event loops; by default one per core, shared process-wide.
    ///   - logger: Where the server logs (at debug level, and errors of the app).
    public init(
        application: any Application,
        configuration: ServerConfiguration = .init(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger
    ) {
        self.application = application
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.logger = logger
        self.limiter = ConnectionLimiter(
            maxConnections: configuration.maxConnections, maxPerAddress: configuration.maxConnectionsPerAddress,
            exemptsLoopback: configuration.exemptsLoopbackFromAddressCap,
            ratePerAddress: configuration.connectionRatePerAddress, trustedProxies: configuration.trustedProxies,
            counters: self.counters, logger: logger)
    }

    /// Whether connections speak TLS (``ServerConfiguration/tls``).
    public var isTLS: Bool { self.configuration.tls != nil }

    /// The address the server listens on, once it does.
    ///
    /// - Returns: The bound address (with the real port when the configuration asked for port 0).
    /// - Throws: The error that stopped the server from listening.
    public func listeningAddress() async throws -> SocketAddress {
        let address = try await withCheckedThrowingContinuation { continuation in
            self.state.withLock { state in
                if let address = state.address {
                    continuation.resume(returning: address)
                } else if let failed = state.failed {
                    continuation.resume(throwing: failed)
                } else {
                    state.addressWaiters.append(continuation)
                }
            }
        }
        HandOver.acquire()
        return address
    }

    /// Binds, then serves until graceful shutdown or cancellation.
    ///
    /// - Throws: When the address cannot be bound.
    public func run() async throws {
        let serverChannel: NIOAsyncChannel<AcceptedConnection?, Never>
        do {
            serverChannel = try await self.bind()
        } catch {
            self.listeningFailed(error)
            throw error
        }
        let address = serverChannel.channel.localAddress!
        self.logger.debug("listening", metadata: ["switchboard.address": "\(address)"])
        let waiters = self.state.withLock { state in
            state.address = address
            defer { state.addressWaiters = [] }
            return state.addressWaiters
        }
        HandOver.release()
        for waiter in waiters { waiter.resume(returning: address) }

        try await withTaskCancellationHandler {
            try await withGracefulShutdownHandler {
                try await serverChannel.executeThenClose { inbound in
                    try await withThrowingDiscardingTaskGroup { group in
                        for try await connection in inbound {
                            // A refused connection (a connection limit) answers 503 and closes by itself.
                            guard let connection else { continue }
                            let executor =
                                self.configuration.runsApplicationOnEventLoop
                                ? EventLoopTaskExecutor(connection.channel.eventLoop) : nil
                            group.addTask(executorPreference: executor) {
                                await self.serve(connection)
                            }
                        }
                    }
                }
            } onGracefulShutdown: {
                self.beginShutdown(serverChannel: serverChannel.channel)
            }
            await self.waitForHandedOverConnections()
        } onCancel: {
            self.logCancellation()
        }
        self.logger.debug("stopped")
    }

    /// Cancellation closes every connection left; during a graceful shutdown it means the shutdown deadline passed
    /// (a `ServiceGroup`'s `maximumGracefulShutdownDuration`), which the operator should hear about.
    private func logCancellation() {
        let (shuttingDown, open) = self.state.withLock { ($0.shuttingDown, $0.connections.count) }
        guard open > 0 else { return }
        let reason = shuttingDown ? "shutdown deadline passed" : "server cancelled"
        self.logger.notice("\(reason): closing \(open) open connection\(open == 1 ? "" : "s")")
    }

    /// Waits until every connection handed over to a hijacker has closed; on cancellation, closes them.
    private func waitForHandedOverConnections() async {
        await withTaskCancellationHandler {
            while true {
                let open = self.state.withLock { Array($0.connections.values) }
                guard let next = open.first else { return }
                if Task.isCancelled { return }
                try? await next.closeFuture.value()
                // The close callbacks unregister it; make sure before looking again.
                self.unregister(next)
            }
        } onCancel: {
            for channel in self.state.withLock({ Array($0.connections.values) }) { channel.close(promise: nil) }
        }
    }

    private func listeningFailed(_ error: any Error) {
        let waiters = self.state.withLock { state in
            state.failed = error
            defer { state.addressWaiters = [] }
            return state.addressWaiters
        }
        for waiter in waiters { waiter.resume(throwing: error) }
    }

    /// Stops accepting and asks every HTTP connection to close once idle.
    private func beginShutdown(serverChannel: any Channel) {
        self.logger.debug("graceful shutdown: no longer accepting connections")
        let connections = self.state.withLock { state in
            state.shuttingDown = true
            return Array(state.connections.values)
        }
        serverChannel.close(promise: nil)
        for channel in connections {
            channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        }
    }

    var isShuttingDown: Bool {
        self.state.withLock { $0.shuttingDown }
    }

    func makeConnectionID() -> Int {
        self.nextConnectionID.wrappingAdd(1, ordering: .relaxed).newValue
    }

    /// Tracks `channel` for graceful shutdown; `false` if shutdown has begun and it should close at once.
    func register(_ channel: any Channel) -> Bool {
        self.state.withLock { state in
            guard !state.shuttingDown else { return false }
            state.connections[ObjectIdentifier(channel)] = channel
            return true
        }
    }

    /// Stops tracking `channel` and gives its place under the connection caps back; later calls do nothing.
    func unregister(_ channel: any Channel) {
        let removed = self.state.withLock { $0.connections.removeValue(forKey: ObjectIdentifier(channel)) }
        // NIO keeps a channel's addresses after it closed.
        if removed != nil { self.limiter.release(channel.remoteAddress) }
    }
}
