import FoundationEssentials
import HTTPTypes
package import Logging
package import NIOCore
import NIOPosix
package import ServiceLifecycle
package import Switchboard
import SwitchboardApi
import SwitchboardDemos
import SwitchboardPubSub
package import SwitchboardRooms
package import SwitchboardTopics
import SwitchboardWebSocket

/// What `/healthz` and `/readyz` report about the broker.
package struct BrokerHealth: Sendable, Hashable {
    /// `embedded` or `redis`.
    package var kind: String
    /// `nil` when the broker answers right now (a round trip, not a flag), or why it does not.
    package var unavailable: String?

    package init(kind: String, unavailable: String? = nil) {
        self.kind = kind
        self.unavailable = unavailable
    }
}

/// The node's routes: the page, the seed's `/chat`, receive-only channel sockets, the rooms protocol, the server
/// API (and its `POST /publish/{channel}`), the health checks and an app's own routes, all on the fan-out engine
/// (``Topics``) and its broker (embedded, or Redis for many nodes).
///
/// | Route | What |
/// |---|---|
/// | `GET /` | the chat page (HTML, CSS and JS files compiled into the executable) |
/// | `GET /chat` | WebSocket, raw text frames: every message to every `/chat` socket of every node, sender included |
/// | `GET /ws` | WebSocket, subprotocol `switchboard.chat.v1`: rooms, nicknames, history, catch-up (docs/PROTOCOL.md) |
/// | `GET /subscribe/{channel}` | WebSocket, receive-only: every message published to `channel` |
/// | `POST /publish/{channel}` | `Authorization: Bearer <key>`; the body (UTF-8 text or JSON) to `channel` |
/// | `/api/v1/…` | the server API (docs/openapi.json): publish, batch, history, presence, channels, info, disconnect, unsubscribe |
/// | `GET /healthz` | liveness: 200 while the process serves |
/// | `GET /readyz` | readiness: 200 when the broker answers a round trip, else 503 with the reason |
/// | `GET /echo` | WebSocket echo (conformance and benchmarks), only with ``ChatConfiguration/servesEcho`` |
package struct ChatApplication: Application {
    private let routes: Router
    private let api: ApiEndpoint
    private let counters: ChatCounters
    /// What must run beside the routes: the cluster survey (the API's cluster questions), and the embedded presence
    /// (it reports the leaves still waiting at shutdown).
    package let services: [any Service]
    /// The registry of this node's connections.
    package let registry: ConnectionRegistry

    /// Builds the application.
    ///
    /// - Parameters:
    ///   - topics: The fan-out engine, on `LocalBroker()` in one process or a `RedisBroker` across nodes.
    ///   - configuration: Origins, keys and limits.
    ///   - health: The broker's readiness, for `/readyz` (a round trip to it).
    ///   - ready: Whether the broker's connections are up, asked before each `/chat` and `/subscribe` socket opens.
    ///   - roomLog: Where room history lives (the Redis log with Redis); `nil` for this process's memory.
    ///   - presence: Who is in which room (the Redis presence with Redis); `nil` for this process's memory, which
    ///     reports its transitions to `presenceObserver` after `leaveDelay`.
    ///   - counters: Where the app counts the limits it hit, for metrics.
    ///   - observer: Told of `/ws` sockets opening and closing and of messages said (webhooks).
    ///   - memberIDs: This node's id and its sockets' ids.
    ///   - eventLoop: Where the embedded presence's delayed leaves wait.
    ///   - appRoutes: An embedding app's own routes, added before the node's.
    package static func make(
        topics: Topics,
        configuration: ChatConfiguration = .init(),
        health: @escaping @Sendable () async -> BrokerHealth = { BrokerHealth(kind: "embedded") },
        ready: @escaping @Sendable () async -> Bool = { true },
        roomLog: (any RoomLog)? = nil,
        presence: (any PresenceStore)? = nil,
        presenceObserver: (any PresenceObserver)? = nil,
        leaveDelay: TimeAmount = .seconds(3),
        counters: ChatCounters = ChatCounters(),
        observer: (any ChatObserver)? = nil,
        memberIDs: MemberIDs = MemberIDs(),
        eventLoop: any EventLoop = NIOSingletons.posixEventLoopGroup.next(),
        logger: Logger,
        appRoutes: (inout Router) -> Void = { _ in }
    ) -> ChatApplication {
        var services: [any Service] = []
        // The embedded history is told which rooms have members here (it never evicts those); Redis needs no help.
        let log: any RoomLog
        var history: InMemoryRoomHistory?
        if let roomLog {
            log = roomLog
        } else {
            let embedded = InMemoryRoomHistory(limits: configuration.history, counters: counters)
            history = embedded
            log = InMemoryRoomLog(history: embedded, broker: topics.broker)
        }
        let store: any PresenceStore
        if let presence {
            store = presence
        } else {
            let embedded = InMemoryPresence(
                broker: topics.broker, observer: presenceObserver, leaveDelay: leaveDelay,
                eventLoop: eventLoop)
            services.append(embedded)
            store = embedded
        }
        let registry = ConnectionRegistry(limits: configuration.registryLimits, observer: history, logger: logger)
        let rooms = RoomsEndpoint(
            context: RoomsContext(
                configuration: configuration.rooms, topics: topics, log: log, presence: store, registry: registry,
                memberIDs: memberIDs, counters: counters, observer: observer, logger: logger))
        let answers = ClusterAnswers(node: memberIDs.node, topics: topics, registry: registry, counters: counters)
        let survey = ClusterSurvey(
            broker: topics.broker, node: memberIDs.node, deadline: configuration.clusterDeadline, logger: logger,
            answer: answers.answer)
        services.append(survey)
        let api = ApiEndpoint(
            configuration: configuration.api, topics: topics, log: log, presence: store, survey: survey,
            counters: counters, logger: logger)
        let sockets = SocketEndpoints(
            topics: topics, configuration: configuration, registry: registry, counters: counters, ready: ready,
            logger: logger)
        var router = Router()
        appRoutes(&router)
        router.get("/") { _ in ChatPage.index }
        router.get("/app.js") { _ in ChatPage.script }
        router.get("/app.css") { _ in ChatPage.style }
        router.get("/chat") { request in try await sockets.chat(request) }
        router.get("/subscribe/:channel") { request in try await sockets.subscribe(request) }
        router.get("/ws") { request in try await rooms.upgrade(request) }
        router.post("/publish/:channel") { request in try await api.publishRoute(request) }
        router.get("/healthz") { _ in Self.healthy }
        router.get("/readyz") { _ in Self.readiness(await health()) }
        if configuration.servesEcho {
            // Origins as for every socket: a page elsewhere cannot use a visitor's browser against it.
            router.get("/echo") { request in
                try sockets.checkOrigin(request)
                return EchoEndpoint.upgrade(request)
            }
        }
        return ChatApplication(
            routes: router, api: api, counters: counters, services: services, registry: registry)
    }

    private init(
        routes: Router, api: ApiEndpoint, counters: ChatCounters, services: [any Service], registry: ConnectionRegistry
    ) {
        self.routes = routes
        self.api = api
        self.counters = counters
        self.services = services
        self.registry = registry
    }

    package func respond(to request: Request) async throws -> Response {
        // The route is found once; it is counted by its pattern, never the path (a path carries channel names). The
        // API answers every method under its prefix itself: its 404s, 405s and `Allow` are its own.
        let isAPI = request.path.hasPrefix("/api/")
        let match = isAPI ? self.api.match(request) : self.routes.match(request)
        let route = match.pattern ?? "unmatched"
        do {
            var response = try await isAPI ? self.api.respond(match) : match.respond()
            ContentLength.add(to: &response, answering: request)
            self.counters.countRequest(route: route, status: response.status.code)
            return response
        } catch let error as HTTPError {
            self.counters.countRequest(route: route, status: error.status.code)
            throw error
        } catch {
            self.counters.countRequest(route: route, status: 500)
            throw error
        }
    }

    private static let healthy: Response = {
        let body = #"{"status":"ok"}"# + "\n"
        return Response(
            headers: [
                .contentType: "application/json", .cacheControl: "no-store", .contentLength: "\(body.utf8.count)",
            ],
            body: .init(string: body))
    }()

    private static func readiness(_ state: BrokerHealth) -> Response {
        let body = Readiness(
            status: state.unavailable == nil ? "ready" : "unavailable", broker: state.kind, reason: state.unavailable)
        return Response(
            status: state.unavailable == nil ? .ok : .serviceUnavailable,
            headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(string: String(decoding: (try? JSONEncoder().encode(body)) ?? Data(), as: UTF8.self) + "\n"))
    }
}

/// The body of `/readyz`.
private struct Readiness: Encodable {
    var status: String
    var broker: String
    var reason: String?
}
