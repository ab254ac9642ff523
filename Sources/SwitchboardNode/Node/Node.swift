public import Logging
public import NIOCore
import NIOPosix
public import ServiceLifecycle
public import Switchboard
import SwitchboardApi
import SwitchboardAuth
import SwitchboardMetrics
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardRooms
import SwitchboardRoomsRedis
public import SwitchboardServer
public import SwitchboardTopics
import SwitchboardWebhooks
public import UnixSignals

/// A Switchboard node: one application that reads its ``NodeConfiguration``, builds the object graph (broker, stores,
/// registry, hooks, webhooks, metrics, the chat's routes and an app's own) and runs its services in order.
///
/// The order is the node's, in code (``serviceNames``): Redis's connections first, then the webhooks, presence, the
/// cluster survey, the reloaders, the metrics server, and the public server last. ServiceLifecycle shuts services
/// down in reverse: the server stops taking connections and closes its sockets first, presence then removes this
/// node's members (and reports their leaves) while Redis still runs, the webhooks drain, and the connections close
/// last.
///
/// ```swift
/// var configuration = NodeConfiguration()
/// configuration.server.port = 8080
/// let node = try await Node(configuration: configuration, logger: logger) { router, topics in
///     router.post("/orders/:id/ship") { request in
///         try await topics.publish(ByteBuffer(string: "shipped"), to: "orders.\(request.parameters["id"] ?? "")")
///         return Response(status: .noContent)
///     }
/// }
/// try await node.runService()  // until SIGTERM or SIGINT
/// ```
public final class Node: Service, Sendable {
    /// What the node was built from.
    public let configuration: NodeConfiguration
    /// The fan-out engine: publish to its topics, or attach sockets of an app's own routes.
    public let topics: Topics
    /// The public server.
    public let server: Server
    let logger: Logger
    /// The services, in start order (shutdown is the reverse), with a name each.
    let services: [(name: String, configuration: ServiceGroupConfiguration.ServiceConfiguration)]
    /// The objects the node built, for tests and metrics.
    package let graph: NodeGraph

    /// Builds a node.
    ///
    /// - Parameters:
    ///   - configuration: Its settings.
    ///   - logger: Where the node and its libraries log.
    ///   - eventLoopGroup: Where it runs; by default one event loop per core this process may use.
    ///   - routes: An app's own routes, answered before the node's; given the node's topics.
    /// - Throws: ``NodeError`` when a key, a certificate or a JWKS URL named in `configuration` cannot be used.
    public init(
        configuration: NodeConfiguration,
        logger: Logger,
        eventLoopGroup: (any EventLoopGroup)? = nil,
        routes: (inout Router, Topics) -> Void = { _, _ in }
    ) async throws(NodeError) {
        let group = eventLoopGroup ?? Server.makeEventLoopGroup()
        let graph = try await NodeGraph(configuration: configuration, eventLoopGroup: group, logger: logger)
        let topics = graph.topics
        let application = graph.makeApplication { router in routes(&router, topics) }
        let server = Server(
            application: application,
            configuration: configuration.serverConfiguration(tls: graph.tls),
            eventLoopGroup: group,
            logger: logger)
        graph.exporter?.observe(server: server)
        self.configuration = configuration
        self.topics = topics
        self.server = server
        self.logger = logger
        self.graph = graph
        self.services = graph.services(
            around: application.services, server: server, name: "Switchboard chat", group: group)
        graph.authentication.describe(to: logger)
    }

    /// The services' names, in start order (shutdown is the reverse).
    public var serviceNames: [String] { self.services.map(\.name) }

    /// Runs every service until graceful shutdown (or cancellation) ends them, in reverse order.
    public func run() async throws {
        var configuration = ServiceGroupConfiguration(
            services: self.services.map(\.configuration), gracefulShutdownSignals: [], logger: self.logger)
        configuration.maximumGracefulShutdownDuration = .seconds(self.configuration.server.shutdownTimeout)
        try await ServiceGroup(configuration: configuration).run()
    }

    /// Runs the node as a process's main service: until one of `signals`, then shuts down within the configured
    /// shutdown timeout (past it, graceful shutdown becomes cancellation: the server closes every connection left).
    public func runService(gracefulShutdownSignals signals: [UnixSignal] = [.sigterm, .sigint]) async throws {
        var configuration = ServiceGroupConfiguration(
            services: [.init(service: self)], gracefulShutdownSignals: signals, logger: self.logger)
        configuration.maximumGracefulShutdownDuration = .seconds(self.configuration.server.shutdownTimeout + 1)
        try await ServiceGroup(configuration: configuration).run()
    }

    /// Where the public server listens, once it does.
    public func listeningAddress() async throws -> SocketAddress {
        try await self.server.listeningAddress()
    }
}

extension NodeConfiguration {
    /// The public server's configuration.
    func serverConfiguration(tls: TLSCredentials?) -> ServerConfiguration {
        var configuration = ServerConfiguration(
            host: self.server.host, port: self.server.port, maxConnections: self.server.maxConnections,
            maxConnectionsPerAddress: self.server.maxConnectionsPerIP,
            connectionRatePerAddress: self.server.connectionRatePerIP, tls: tls,
            trustedProxies: self.server.trustedProxies)
        configuration.exemptsLoopbackFromAddressCap = self.server.exemptLoopback
        return configuration
    }
}
