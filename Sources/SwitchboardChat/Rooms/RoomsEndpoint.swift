import FoundationEssentials
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Switchboard
import SwitchboardAuth
import SwitchboardTopics
import SwitchboardWebSocket

/// Limits of the rooms protocol; each refusal is an error frame, not a disconnect.
struct RoomsLimits: Sendable {
    var maxFrameBytes = 16 * 1024
    var maxTextCharacters = 4000
    var maxRoomsPerSocket = 32
    var history = 100
    /// How long a join may take to be answered (subscription, presence and the first page of history).
    var joinTimeout = TimeAmount.seconds(5)
}

/// `GET /ws`: the rooms protocol of docs/PROTOCOL.md.
struct RoomsEndpoint: Sendable {
    let sockets: SocketEndpoints
    let topics: Topics
    let log: any RoomLog
    let presence: any PresenceStore
    let members: MemberIDs
    /// The rooms with members on this node, capped.
    let directory: RoomDirectory
    let limits: RoomsLimits
    /// Per-user connection counts and message buckets.
    let users: UserLimits
    /// Each user's sockets here, for the server API.
    let userSockets: UserSockets
    /// Told of sockets opening and closing (webhooks); presence changes reach it through the store.
    let observer: (any ChatObserver)?
    let logger: Logger

    /// Tokens, anonymous access and members-only rooms.
    var auth: ChatAuthentication { self.sockets.configuration.auth }

    func upgrade(_ request: Request) async throws -> Response {
        try self.sockets.checkOrigin(request)
        let configuration = WebSocketConfiguration(
            maxFrameSize: 64 * 1024,
            maxMessageSize: 64 * 1024,
            maxQueuedBytes: self.sockets.configuration.maxQueuedBytes,
            subprotocols: [ChatProtocol.name],
            counters: self.sockets.counters.sockets(.rooms)
        )
        let offered = request.headers[.secWebSocketProtocol] ?? ""
        guard offered.split(separator: ",").contains(where: { $0.trimmingHTTPWhitespace() == ChatProtocol.name }) else {
            throw HTTPError(.badRequest, "offer the subprotocol \(ChatProtocol.name) (Sec-WebSocket-Protocol)")
        }
        let preset = try await self.askConnectHook(request)
        let endpoint = self
        return WebSocket.upgrade(request, configuration: configuration) { socket in
            let session = RoomSession(socket: socket, endpoint: endpoint)
            socket.onOpen { _ in
                session.welcome()
                if let preset { session.accepted(byHook: preset) }
            }
            socket.onMessage { _, message in session.received(message) }
            socket.onClose { _, _, _ in session.closed() }
        }
    }
}

extension RoomsEndpoint {
    /// The connect hook's answer for `request`: the identity the backend vouches for, or `nil`; a refusal is a 403.
    func askConnectHook(_ request: Request) async throws -> Identity? {
        guard let connect = self.sockets.configuration.hooks.connect else { return nil }
        var headers: [String: String] = [:]
        for name in [HTTPField.Name.cookie, .authorization, .origin, .userAgent] {
            if let value = request.headers[name] { headers[name.canonicalName] = value }
        }
        let client = request.remoteAddress.flatMap { $0.ipAddress }
        switch await connect(ChatHooks.ConnectRequest(headers: headers, client: client)) {
        case .accept(let identity):
            return identity
        case .refuse(let reason):
            self.sockets.counters.count(.authRefused)
            throw HTTPError(.forbidden, reason)
        }
    }
}

/// Member ids unique across nodes: a random node id and 64 random bits per socket. Not a counter: ids are shown to
/// everyone in a room, and sequential ones would tell how many sockets a node has served.
final class MemberIDs: Sendable {
    let node = String(UInt64.random(in: 1 << 40...UInt64.max >> 8), radix: 36)

    func next() -> String {
        "\(self.node)-\(String(UInt64.random(in: 1...UInt64.max), radix: 36))"
    }
}
