import Logging
import NIOCore
import ServiceLifecycle
import Switchboard
import SwitchboardApi
import SwitchboardAuth
import SwitchboardHTTPClient
package import SwitchboardMetrics
import SwitchboardPubSub
import SwitchboardRedis
package import SwitchboardRooms
import SwitchboardRoomsRedis
import SwitchboardServer
package import SwitchboardTopics
package import SwitchboardWebhooks

/// The objects a node is made of, built once from its configuration: each made here and only here.
package struct NodeGraph: Sendable {
    let configuration: NodeConfiguration
    let logger: Logger
    package let topics: Topics
    package let counters: ChatCounters
    let authentication: ChatAuthentication
    let tls: TLSCredentials?
    /// With Redis: where commands go (one Redis, shards or a cluster; shared by the broker and the stores), the
    /// service that runs those connections, and the broker.
    package let redis: RedisBackend?
    package let presence: (any PresenceStore)?
    package let dispatcher: WebhookDispatcher?
    package let exporter: MetricsExporter?
    let chat: ChatConfiguration
    let hooks: ChatHooks
    let eventLoop: any EventLoop
    /// The one HTTP client: hooks, webhooks, the JWKS document.
    let client: HTTPClient

    init(configuration: NodeConfiguration, eventLoopGroup group: any EventLoopGroup, logger: Logger)
        async throws(NodeError)
    {
        self.configuration = configuration
        self.logger = logger
        self.eventLoop = group.next()
        let client = HTTPClient(group: group, logger: logger)
        self.client = client
        self.authentication = try await configuration.identity.authentication(client: client)
        self.tls = try configuration.tlsCredentials()
        // With metrics off nothing is recorded, not even a clock read per message.
        let exporter = configuration.metrics.port == nil ? nil : MetricsExporter()
        self.exporter = exporter
        let counters = ChatCounters()
        self.counters = counters
        let dispatcher = configuration.webhooks.configuration.map {
            WebhookDispatcher(configuration: $0, client: client, logger: logger)
        }
        self.dispatcher = dispatcher
        let events = dispatcher.map { WebhookEvents(dispatcher: $0) }
        let hookConfiguration = configuration.webhooks.hooks
        self.hooks =
            hookConfiguration.isEmpty
            ? ChatHooks()
            : BackendHooks(configuration: hookConfiguration, client: client, logger: logger).chatHooks
        self.chat = configuration.chatConfiguration(auth: self.authentication, hooks: self.hooks)
        if let redis = RedisBackend(configuration.redis, group: group, logger: logger, metrics: exporter?.factory) {
            self.redis = redis
            self.topics = Topics(broker: redis.broker, logger: logger, metricsFactory: exporter?.factory)
            self.presence = RedisPresence(
                redis: redis.router, ttl: .seconds(configuration.redis.presenceTTL), observer: events,
                leaveDelay: configuration.webhooks.leaveDelay, counters: counters, logger: logger)
            exporter?.observe(redis: { redis.router.clients }, broker: redis.broker)
        } else {
            self.redis = nil
            self.topics = Topics(broker: LocalBroker(), logger: logger, metricsFactory: exporter?.factory)
            self.presence = nil
        }
        exporter?.observe(topics: self.topics, chat: counters)
        if let dispatcher {
            exporter?.observe(webhooks: dispatcher)
            logger.info(
                "Webhooks on",
                metadata: ["urls": "\(dispatcher.configuration.urls.map(\.description).joined(separator: ", "))"])
        }
        let origins = configuration.chat.origins(host: configuration.server.host, port: configuration.server.port)
        if origins.isEmpty {
            logger.warning(
                "No browser origin is allowed: give --public-url (or --allowed-origin) so the page can connect",
                metadata: ["host": "\(configuration.server.host)", "port": "\(configuration.server.port)"])
        }
    }

    /// The node's routes (an app's own first), with the services that go with them.
    func makeApplication(appRoutes: (inout Router) -> Void) -> ChatApplication {
        let redis = self.redis
        let events = self.dispatcher.map { WebhookEvents(dispatcher: $0) }
        return ChatApplication.make(
            topics: self.topics,
            configuration: self.chat,
            health: {
                guard let redis else { return BrokerHealth(kind: "embedded") }
                return BrokerHealth(kind: "redis", unavailable: await redis.broker.unreadiness(timeout: .seconds(1)))
            },
            ready: { await redis?.broker.isConnected ?? true },
            roomLog: self.redis.map { RedisRoomLog(redis: $0.router, limits: self.chat.history) },
            presence: self.presence,
            presenceObserver: events,
            leaveDelay: self.configuration.webhooks.leaveDelay,
            counters: self.counters,
            observer: events,
            eventLoop: self.eventLoop,
            logger: self.logger,
            appRoutes: appRoutes)
    }

    /// The services in start order (shutdown is the reverse), each named.
    ///
    /// Why this order: Redis's connections outlive everything that uses them; the webhook dispatcher outlives
    /// presence, which reports the last leaves at shutdown (the embedded one at once, the Redis one through the due
    /// set); the survey answers until the end; the public server starts last and stops first, so no socket is left
    /// when presence removes this node's members.
    func services(
        around chatServices: [any Service], server: Server, name: String, group: any EventLoopGroup
    ) -> [(name: String, configuration: ServiceGroupConfiguration.ServiceConfiguration)] {
        var services: [(String, ServiceGroupConfiguration.ServiceConfiguration)] = []
        if let redis = self.redis {
            services.append(("redis client", .init(service: redis.commands)))
            services.append(("redis broker", .init(service: redis.broker)))
        }
        services.append(("http client", .init(service: self.client)))
        if let dispatcher { services.append(("webhook dispatcher", .init(service: dispatcher))) }
        if let presence = self.presence as? RedisPresence {
            services.append(("redis presence", .init(service: presence)))
        }
        for service in chatServices {
            let label = service is ClusterSurvey ? "cluster survey" : "presence"
            services.append((label, .init(service: service)))
        }
        if let verifier = self.authentication.verifier {
            let identity = self.configuration.identity
            if let path = identity.jwksFile {
                services.append(
                    ("jwks file", .init(service: JWKSReloader.file(path, verifier: verifier, logger: self.logger))))
            }
            if let url = identity.jwksURL {
                let reloader = JWKSReloader.url(
                    url, every: .seconds(identity.jwksRefresh), client: self.client, verifier: verifier,
                    logger: self.logger)
                services.append(("jwks url", .init(service: reloader)))
            }
        }
        if let tls {
            services.append(("tls reloader", .init(service: TLSReloader(credentials: tls, logger: self.logger))))
        }
        if let redis = self.redis {
            let report = RedisStartupReport(broker: redis.broker, description: redis.description, logger: self.logger)
            services.append(("redis report", .init(service: report, successTerminationBehavior: .ignore)))
        }
        if let exporter, let port = self.configuration.metrics.port {
            let metricsServer = Server(
                application: MetricsEndpoint(exporter: exporter),
                configuration: MetricsEndpoint.serverConfiguration(host: self.configuration.metrics.host, port: port),
                eventLoopGroup: group,
                logger: self.logger)
            services.append(("metrics server", .init(service: metricsServer)))
            let announcer = Announcer(server: metricsServer, name: "Metrics", path: "metrics")
            services.append(("metrics announcer", .init(service: announcer, successTerminationBehavior: .ignore)))
        }
        services.append(("server", .init(service: server)))
        services.append(
            ("announcer", .init(service: Announcer(server: server, name: name), successTerminationBehavior: .ignore)))
        return services
    }
}

extension NodeConfiguration {
    /// The chat's settings from the node's.
    func chatConfiguration(auth: ChatAuthentication, hooks: ChatHooks) -> ChatConfiguration {
        let api = self.api.configuration
        var chat = ChatConfiguration(
            allowedOrigins: self.chat.origins(host: self.server.host, port: self.server.port),
            requiresOrigin: self.chat.requireOrigin,
            servesEcho: self.chat.echo,
            publishToken: api.publishToken,
            publishKeys: api.publishKeys,
            apiKeys: api.apiKeys,
            clusterDeadline: .milliseconds(Int64(self.api.deadline)),
            maxRooms: self.chat.maxRooms,
            history: RoomHistoryLimits(
                messagesPerRoom: self.chat.historySize, maxAgeMilliseconds: Int64(self.chat.historyTTL) * 1000,
                maxRooms: self.chat.maxRooms, maxBytes: self.chat.historyMemory * 1024 * 1024),
            auth: auth,
            rateLimits: self.chat.rateLimits(exemptLoopback: self.server.exemptLoopback))
        chat.keyRate = api.keyRate
        chat.hooks = hooks
        return chat
    }

    /// The TLS credentials, read now; `nil` without a certificate.
    func tlsCredentials() throws(NodeError) -> TLSCredentials? {
        guard let certificate = self.server.tlsCertificate, let key = self.server.tlsKey else { return nil }
        do {
            return try TLSCredentials(certificateChainPath: certificate, privateKeyPath: key)
        } catch {
            throw NodeError("\(error)")
        }
    }
}

extension ChatSettings {
    /// The rate limits, with this node's say rate (the byte and frame budgets grow with it: a node told to take 1,000
    /// messages a second from a socket takes their frames and text too) and per-IP caps.
    func rateLimits(exemptLoopback: Bool) -> ChatRateLimits {
        var limits = ChatRateLimits()
        let rate = self.sayRate
        limits.sayMessages = .init(rate: rate, burst: 2 * rate)
        limits.userSayMessages = .init(rate: 2 * rate, burst: 4 * rate)
        limits.sayBytes = .init(rate: 1600 * rate, burst: 6400 * rate)
        limits.frames = .init(rate: max(50, 2.5 * rate), burst: max(100, 5 * rate))
        // An address may always send as much as five of its sockets: a node told to take more from each socket
        // takes more from an address too.
        let ipRate = max(self.ipSayRate, 5 * rate)
        limits.addressSayMessages = .init(rate: ipRate, burst: 2 * ipRate)
        limits.socketsPerAddress = self.maxSocketsPerIP
        limits.roomsPerClient = self.roomsPerClient
        limits.limitsLoopback = !exemptLoopback
        return limits
    }
}
