import FoundationEssentials
import HTTPTypes
package import Logging
package import Switchboard
import SwitchboardDemos
import SwitchboardPubSub
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

/// The chat server (the seed's third layer): the page, the seed's `/chat`, receive-only channel sockets, the
/// publish API and a health check, all on the fan-out engine (``Topics``) and its broker (embedded, or Redis for
/// many nodes).
///
/// | Route | What |
/// |---|---|
/// | `GET /` | the chat page (HTML, CSS and JS compiled into the executable) |
/// | `GET /chat` | WebSocket, raw text frames: every message to every `/chat` socket of every node, sender included |
/// | `GET /ws` | WebSocket, subprotocol `switchboard.chat.v1`: rooms, nicknames, history, catch-up (docs/PROTOCOL.md) |
/// | `GET /subscribe/{channel}` | WebSocket, receive-only: every message published to `channel` |
/// | `POST /publish/{channel}` | `Authorization: Bearer <token>`; the body (UTF-8 text or JSON) to `channel` |
/// | `/api/v1/…` | the server API (docs/openapi.json): publish, batch, history, presence, channels, info, disconnect, unsubscribe |
/// | `GET /healthz` | liveness: 200 while the process serves |
/// | `GET /readyz` | readiness: 200 when the broker answers a round trip, else 503 with the reason |
/// | `GET /echo` | WebSocket echo (conformance and benchmarks), only with ``ChatConfiguration/servesEcho`` |
package enum ChatApplication {
    /// Builds the application.
    ///
    /// - Parameters:
    ///   - topics: The fan-out engine, on `LocalBroker()` in one process or a `RedisBroker` across nodes.
    ///   - configuration: Origins, the publish token and limits.
    ///   - health: The broker's readiness, for `/readyz` (a round trip to it).
    ///   - roomLog: Where room history lives (the Redis log with Redis); `nil` for this process's memory.
    ///   - presence: Who is in which room (the Redis presence with Redis); `nil` for this process's memory.
    ///   - counters: Where the app counts the limits it hit, for metrics.
    ///   - observer: Told of `/ws` sockets opening and closing and of every presence change (webhooks).
    ///   - logger: Where the app logs.
    package static func make(
        topics: Topics,
        configuration: ChatConfiguration = .init(),
        health: @escaping @Sendable () async -> BrokerHealth = { BrokerHealth(kind: "embedded") },
        roomLog: (any RoomLog)? = nil,
        presence: (any PresenceStore)? = nil,
        counters: ChatCounters = ChatCounters(),
        observer: (any ChatObserver)? = nil,
        logger: Logger
    ) -> some Application {
        let sockets = SocketEndpoints(topics: topics, configuration: configuration, counters: counters, logger: logger)
        let publish = PublishEndpoint(
            topics: topics, configuration: configuration, counters: counters, logger: logger)
        // The embedded history is told which rooms have members here (it never evicts those); Redis needs no such help.
        let log: any RoomLog
        var history: InMemoryRoomHistory?
        if let roomLog {
            log = roomLog
        } else {
            let embedded = InMemoryRoomHistory(limits: configuration.history, counters: counters)
            history = embedded
            log = InMemoryRoomLog(history: embedded, broker: topics.broker)
        }
        let userSockets = UserSockets()
        let members = MemberIDs()
        let directory = RoomDirectory(maxRooms: configuration.maxRooms, observer: history)
        let stored = presence ?? InMemoryPresence(broker: topics.broker)
        let presence = observer.map { ObservedPresence(store: stored, observer: $0) } ?? stored
        let rooms = RoomsEndpoint(
            sockets: sockets, topics: topics,
            log: log,
            presence: presence,
            members: members,
            directory: directory,
            limits: RoomsLimits(history: configuration.history.shownOnJoin, joinTimeout: configuration.joinTimeout),
            users: UserLimits(limits: configuration.rateLimits),
            userSockets: userSockets,
            observer: observer,
            logger: logger)
        let answers = NodeAnswers(
            node: members.node, started: .now, topics: topics, userSockets: userSockets, directory: directory,
            counters: counters)
        let control = ClusterControl(
            node: members.node, broker: topics.broker, deadline: configuration.clusterDeadline, logger: logger,
            answer: answers.answer)
        control.start()
        let api = ApiEndpoint(
            topics: topics, log: log, presence: presence, control: control, configuration: configuration,
            counters: counters, logger: logger)
        var router = Router()
        router.get("/") { _ in ChatPage.response(ChatPage.html, type: "text/html; charset=utf-8") }
        router.get("/app.js") { _ in ChatPage.response(ChatPage.script, type: "text/javascript; charset=utf-8") }
        router.get("/app.css") { _ in ChatPage.response(ChatPage.style, type: "text/css; charset=utf-8") }
        router.get("/chat") { request in try await sockets.chat(request) }
        router.get("/subscribe/:channel") { request in try await sockets.subscribe(request) }
        router.get("/ws") { request in try await rooms.upgrade(request) }
        router.post("/publish/:channel") { request in try await publish.respond(to: request) }
        router.get("/healthz") { _ in
            Response(
                headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(string: #"{"status":"ok"}"# + "\n"))
        }
        router.get("/readyz") { _ in
            let state = await health()
            let body = Readiness(
                status: state.unavailable == nil ? "ready" : "unavailable", broker: state.kind,
                reason: state.unavailable)
            return Response(
                status: state.unavailable == nil ? .ok : .serviceUnavailable,
                headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(string: String(decoding: (try? JSONEncoder().encode(body)) ?? Data(), as: UTF8.self) + "\n")
            )
        }
        if configuration.servesEcho {
            router.get("/echo") { request in EchoEndpoint.upgrade(request) }
        }
        let routes = router
        return Builder {
            ContentLength()
            AnyApplication { request in
                // Counted by the route's pattern, never the path: a path carries channel names.
                // The API answers every method under its prefix itself: its 404s, 405s and `Allow` are its own.
                let isAPI = request.path.hasPrefix("/api/")
                let route = (isAPI ? api.pattern(matching: request) : routes.pattern(matching: request)) ?? "unmatched"
                do {
                    let response = try await isAPI ? api.respond(to: request) : routes.respond(to: request)
                    counters.countRequest(route: route, status: response.status.code)
                    return response
                } catch let error as HTTPError {
                    counters.countRequest(route: route, status: error.status.code)
                    throw error
                } catch {
                    counters.countRequest(route: route, status: 500)
                    throw error
                }
            }
        }
    }
}

/// The body of `/readyz`.
private struct Readiness: Encodable {
    var status: String
    var broker: String
    var reason: String?
}
