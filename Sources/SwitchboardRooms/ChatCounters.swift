import NIOConcurrencyHelpers
package import SwitchboardWebSocket
import Synchronization

/// What the chat did since it started, for metrics: each budget or deadline hit is counted here, the sockets by
/// endpoint (``sockets(_:)``), and HTTP requests by route and status.
package final class ChatCounters: Sendable {
    /// The chat's socket endpoints.
    package enum Endpoint: String, Sendable, CaseIterable {
        /// `GET /chat`, the seed's chat.
        case chat
        /// `GET /subscribe/{channel}`.
        case subscribe
        /// `GET /ws`, the rooms protocol.
        case rooms = "ws"
    }

    private let chatSockets = WebSocketCounters()
    private let subscribeSockets = WebSocketCounters()
    private let roomSockets = WebSocketCounters()
    /// Requests by route pattern (not path: no channel names) and status.
    private let requests = NIOLockedValueBox<[RequestKey: Int]>([:])
    let roomsFullRefusals = Atomic<Int>(0)
    let joinTimeouts = Atomic<Int>(0)
    let joinOverflows = Atomic<Int>(0)
    let originRefusals = Atomic<Int>(0)
    let publishFailures = Atomic<Int>(0)
    let historyEvictions = Atomic<Int>(0)
    let authRefusals = Atomic<Int>(0)
    let tokenExpiries = Atomic<Int>(0)
    let forbiddenJoins = Atomic<Int>(0)
    let rateLimitRefusals = Atomic<Int>(0)
    let invalidRequests = Atomic<Int>(0)
    let refusalClosures = Atomic<Int>(0)
    let roomQuotaRefusals = Atomic<Int>(0)
    let clientSocketRefusals = Atomic<Int>(0)
    let abandonedLeaves = Atomic<Int>(0)

    package init() {}

    /// The counters of one endpoint's sockets: open now, messages and bytes, closes by code, slow consumers,
    /// violations, keepalive and idle timeouts.
    package func sockets(_ endpoint: Endpoint) -> WebSocketCounters {
        switch endpoint {
        case .chat: self.chatSockets
        case .subscribe: self.subscribeSockets
        case .rooms: self.roomSockets
        }
    }

    /// A route pattern (such as `/subscribe/:channel`, or `unmatched`) and a status code.
    package struct RequestKey: Sendable, Hashable {
        package var route: String
        package var status: Int
    }

    /// Counts a request answered: one lock per request, which HTTP requests (not messages) can afford.
    package func countRequest(route: String, status: Int) {
        self.requests.withLockedValue { $0[RequestKey(route: route, status: status), default: 0] += 1 }
    }

    /// Requests answered, by route and status.
    package var requestCounts: [RequestKey: Int] { self.requests.withLockedValue { $0 } }

    /// What the counters say now.
    package struct Snapshot: Sendable, Hashable {
        /// Joins refused because the node held ``ChatConfiguration/maxRooms`` rooms (`rooms_full`).
        package var roomsFullRefusals: Int
        /// Joins and re-syncs not answered within ``ChatConfiguration/joinTimeout`` (`unavailable`).
        package var joinTimeouts: Int
        /// Sockets closed (1013) because more live messages arrived during their join than are held for one.
        package var joinOverflows: Int
        /// WebSocket handshakes refused for their `Origin` (or for lacking one with `requiresOrigin`).
        package var originRefusals: Int
        /// Messages that could not be published (the sender got `unavailable` or, on `/chat`, 1013).
        package var publishFailures: Int
        /// Rooms whose embedded history was dropped to stay within ``RoomHistoryLimits``.
        package var historyEvictions: Int
        /// Tokens refused, and sockets closed for not authenticating in time.
        package var authRefusals: Int
        /// Sockets closed because their token expired without a refresh.
        package var tokenExpiries: Int
        /// Joins of members-only rooms refused (`forbidden`), and subscriptions refused for the same reason.
        package var forbiddenJoins: Int
        /// Requests refused by a rate limit (`rate_limited`, a publish key's `429`, `auth_pending`), and sockets closed
        /// for going on (4008) or for one user too many (4005).
        package var rateLimitRefusals: Int
        /// Requests refused as malformed or impossible (bad JSON, an unknown type or room, a frame too large, `say` in
        /// a room not joined), each answered with an error.
        package var invalidRequests: Int
        /// Sockets dropped (4008 on `/ws`, 1008 on `/chat`) for going on after as many refusals in a row as allowed.
        package var refusalClosures: Int
        /// Joins refused because their client created as many rooms as one may (`room_quota`).
        package var roomQuotaRefusals: Int
        /// WebSocket handshakes refused because their address or user had as many sockets as allowed.
        package var clientSocketRefusals: Int
        /// Presence leaves never announced nor reported: Redis did not take them in time (``RedisPresence``).
        package var abandonedLeaves: Int
        /// The sockets' own counters, all endpoints together.
        package var webSockets: WebSocketCounters.Snapshot
    }

    package var snapshot: Snapshot {
        Snapshot(
            roomsFullRefusals: self.roomsFullRefusals.load(ordering: .relaxed),
            joinTimeouts: self.joinTimeouts.load(ordering: .relaxed),
            joinOverflows: self.joinOverflows.load(ordering: .relaxed),
            originRefusals: self.originRefusals.load(ordering: .relaxed),
            publishFailures: self.publishFailures.load(ordering: .relaxed),
            historyEvictions: self.historyEvictions.load(ordering: .relaxed),
            authRefusals: self.authRefusals.load(ordering: .relaxed),
            tokenExpiries: self.tokenExpiries.load(ordering: .relaxed),
            forbiddenJoins: self.forbiddenJoins.load(ordering: .relaxed),
            rateLimitRefusals: self.rateLimitRefusals.load(ordering: .relaxed),
            invalidRequests: self.invalidRequests.load(ordering: .relaxed),
            refusalClosures: self.refusalClosures.load(ordering: .relaxed),
            roomQuotaRefusals: self.roomQuotaRefusals.load(ordering: .relaxed),
            clientSocketRefusals: self.clientSocketRefusals.load(ordering: .relaxed),
            abandonedLeaves: self.abandonedLeaves.load(ordering: .relaxed),
            webSockets: Endpoint.allCases.map { self.sockets($0).snapshot }.reduce(into: .zero) { $0.add($1) }
        )
    }

    /// A limit that was hit.
    package enum Hit: Sendable, Equatable {
        case roomsFull, joinTimeout, joinOverflow, originRefused, publishFailed, historyEvicted
        case authRefused, tokenExpired, joinForbidden, rateLimited, invalidRequest, refusalsClosed
        case roomQuota, clientSockets, leaveAbandoned
    }

    package func count(_ hit: Hit) {
        switch hit {
        case .roomsFull: self.roomsFullRefusals.wrappingAdd(1, ordering: .relaxed)
        case .joinTimeout: self.joinTimeouts.wrappingAdd(1, ordering: .relaxed)
        case .joinOverflow: self.joinOverflows.wrappingAdd(1, ordering: .relaxed)
        case .originRefused: self.originRefusals.wrappingAdd(1, ordering: .relaxed)
        case .publishFailed: self.publishFailures.wrappingAdd(1, ordering: .relaxed)
        case .historyEvicted: self.historyEvictions.wrappingAdd(1, ordering: .relaxed)
        case .authRefused: self.authRefusals.wrappingAdd(1, ordering: .relaxed)
        case .tokenExpired: self.tokenExpiries.wrappingAdd(1, ordering: .relaxed)
        case .joinForbidden: self.forbiddenJoins.wrappingAdd(1, ordering: .relaxed)
        case .rateLimited: self.rateLimitRefusals.wrappingAdd(1, ordering: .relaxed)
        case .invalidRequest: self.invalidRequests.wrappingAdd(1, ordering: .relaxed)
        case .refusalsClosed: self.refusalClosures.wrappingAdd(1, ordering: .relaxed)
        case .roomQuota: self.roomQuotaRefusals.wrappingAdd(1, ordering: .relaxed)
        case .clientSockets: self.clientSocketRefusals.wrappingAdd(1, ordering: .relaxed)
        case .leaveAbandoned: self.abandonedLeaves.wrappingAdd(1, ordering: .relaxed)
        }
    }
}
