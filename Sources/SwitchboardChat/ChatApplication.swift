import HTTPTypes
package import Logging
package import Switchboard
import SwitchboardDemos
import SwitchboardPubSub
package import SwitchboardTopics
import SwitchboardWebSocket

/// What `/healthz` reports about the broker.
package struct BrokerHealth: Sendable, Hashable {
    /// `embedded` or `redis`.
    package var kind: String
    /// Whether the broker reaches every node (always true for the embedded one).
    package var isConnected: Bool

    package init(kind: String, isConnected: Bool) {
        self.kind = kind
        self.isConnected = isConnected
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
/// | `GET /healthz` | 200 while serving, with the broker's state |
/// | `GET /echo` | WebSocket echo (conformance and benchmarks), only with ``ChatConfiguration/servesEcho`` |
package enum ChatApplication {
    /// Builds the application.
    ///
    /// - Parameters:
    ///   - topics: The fan-out engine, on `LocalBroker()` in one process or a `RedisBroker` across nodes.
    ///   - configuration: Origins, the publish token and limits.
    ///   - health: What `/healthz` says about the broker.
    ///   - roomLog: Where room history lives (the Redis log with Redis); `nil` for this process's memory.
    ///   - presence: Who is in which room (the Redis presence with Redis); `nil` for this process's memory.
    ///   - logger: Where the app logs.
    package static func make(
        topics: Topics,
        configuration: ChatConfiguration = .init(),
        health: @escaping @Sendable () async -> BrokerHealth = { BrokerHealth(kind: "embedded", isConnected: true) },
        roomLog: (any RoomLog)? = nil,
        presence: (any PresenceStore)? = nil,
        logger: Logger
    ) -> some Application {
        let sockets = SocketEndpoints(topics: topics, configuration: configuration, logger: logger)
        let publish = PublishEndpoint(topics: topics, configuration: configuration, logger: logger)
        let rooms = RoomsEndpoint(
            sockets: sockets, topics: topics,
            log: roomLog ?? InMemoryRoomLog(history: InMemoryRoomHistory(), broker: topics.broker),
            presence: presence ?? InMemoryPresence(broker: topics.broker),
            members: MemberIDs(),
            limits: RoomsLimits(), logger: logger)
        var router = Router()
        router.get("/") { _ in ChatPage.response(ChatPage.html, type: "text/html; charset=utf-8") }
        router.get("/app.js") { _ in ChatPage.response(ChatPage.script, type: "text/javascript; charset=utf-8") }
        router.get("/app.css") { _ in ChatPage.response(ChatPage.style, type: "text/css; charset=utf-8") }
        router.get("/chat") { request in try await sockets.chat(request) }
        router.get("/subscribe/:channel") { request in try await sockets.subscribe(request) }
        router.get("/ws") { request in try await rooms.upgrade(request) }
        router.post("/publish/:channel") { request in try await publish.respond(to: request) }
        router.get("/healthz") { _ in
            let state = await health()
            let body = #"{"status":"ok","broker":"\#(state.kind)","connected":\#(state.isConnected)}"# + "\n"
            return Response(
                headers: [.contentType: "application/json", .cacheControl: "no-store"],
                body: .init(string: body)
            )
        }
        if configuration.servesEcho {
            router.get("/echo") { request in EchoEndpoint.upgrade(request) }
        }
        return Builder {
            ContentLength()
            router
        }
    }
}
