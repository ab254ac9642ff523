import HTTPTypes
public import Logging
public import NIOCore
public import Switchboard
import SwitchboardDemos
public import SwitchboardPubSub
import SwitchboardWebSocket

/// What `/healthz` reports about the broker.
public struct BrokerHealth: Sendable, Hashable {
    /// `embedded` or `redis`.
    public var kind: String
    /// Whether the broker reaches every node (always true for the embedded one).
    public var isConnected: Bool

    public init(kind: String, isConnected: Bool) {
        self.kind = kind
        self.isConnected = isConnected
    }
}

/// The chat server (the seed's third layer): the page, the seed's `/chat`, receive-only channel sockets, the
/// publish API and a health check, all on a ``Broker`` (embedded, or Redis for many nodes).
///
/// | Route | What |
/// |---|---|
/// | `GET /` | the chat page (HTML, CSS and JS compiled into the executable) |
/// | `GET /chat` | WebSocket, raw text frames: every message to every `/chat` socket of every node, sender included |
/// | `GET /ws` | WebSocket, subprotocol `switchboard.chat.v1`: rooms, nicknames, history, catch-up (docs/PROTOCOL.md) |
/// | `GET /subscribe/{channel}` | WebSocket, receive-only: every message published to `channel` |
/// | `POST /publish/{channel}` | `Authorization: Bearer <token>`; the body (UTF-8 text or JSON) to `channel` |
/// | `GET /healthz` | 200 while serving, with the broker's state |
/// | `GET /echo` | WebSocket echo (conformance and benchmarks) |
public enum ChatApplication {
    /// Builds the application.
    ///
    /// - Parameters:
    ///   - broker: Where messages fan out: `LocalBroker()` in one process, a `RedisBroker` across nodes.
    ///   - eventLoopGroup: The server's loops; each channel's broker subscription runs on one of them.
    ///   - configuration: Origins, the publish token and limits.
    ///   - health: What `/healthz` says about the broker.
    ///   - roomLog: Where room history lives: `RedisRoomLog` with Redis; `nil` for this process's memory.
    ///   - presence: Who is in which room: `RedisPresence` with Redis; `nil` for this process's memory.
    ///   - logger: Where the app logs.
    public static func make(
        broker: any Broker,
        eventLoopGroup: any EventLoopGroup,
        configuration: ChatConfiguration = .init(),
        health: @escaping @Sendable () async -> BrokerHealth = { BrokerHealth(kind: "embedded", isConnected: true) },
        roomLog: (any RoomLog)? = nil,
        presence: (any PresenceStore)? = nil,
        logger: Logger
    ) -> some Application {
        let hubs = ChannelHubs(
            broker: broker, eventLoopGroup: eventLoopGroup, maxBacklogBytes: configuration.maxBacklogBytes,
            logger: logger)
        let sockets = SocketEndpoints(hubs: hubs, broker: broker, configuration: configuration, logger: logger)
        let publish = PublishEndpoint(broker: broker, configuration: configuration, logger: logger)
        let rooms = RoomsEndpoint(
            sockets: sockets, hubs: hubs,
            log: roomLog ?? InMemoryRoomLog(history: InMemoryRoomHistory(), broker: broker),
            presence: presence ?? InMemoryPresence(broker: broker),
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
        router.get("/echo") { request in EchoEndpoint.upgrade(request) }
        return Builder {
            ContentLength()
            router
        }
    }
}
