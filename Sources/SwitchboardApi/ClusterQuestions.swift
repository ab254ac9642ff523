import FoundationEssentials
package import NIOCore
import SwitchboardAuth
package import SwitchboardRooms
package import SwitchboardTopics
import SwitchboardWebSocket

/// A question the server API asks every node (`info`, `channels`, `disconnect`, `unsubscribe`), through the
/// node's ``ClusterSurvey``.
struct ClusterRequest: Codable, Sendable {
    var op: String
    var user: String? = nil
    var room: String? = nil
    var code: UInt16? = nil
    var reason: String? = nil
}

/// One node's answer: always its figures, and what the operation found there.
struct ClusterReply: Codable, Sendable {
    var node: NodeInfo
    /// `channels`: channel → sockets subscribed on this node.
    var channels: [String: Int]?
    /// `disconnect` and `unsubscribe`: sockets acted on at this node.
    var count: Int?
}

/// A node as `GET /api/v1/info` shows it.
struct NodeInfo: Codable, Sendable, Equatable {
    var node: String
    var version: String
    /// Seconds since the node started.
    var uptime: Int
    /// WebSockets open on the node (all endpoints).
    var connections: Int
    /// Rooms with members on the node.
    var rooms: Int
    /// Users (token user ids) with `/ws` sockets on the node.
    var users: Int
}

/// What this node answers to the server API's cluster questions: give ``answer(_:)`` to the node's
/// ``ClusterSurvey``.
package struct ClusterAnswers: Sendable {
    let node: String
    let started: ContinuousClock.Instant
    let topics: Topics
    let registry: ConnectionRegistry
    let counters: ChatCounters

    /// The server's version, in `info`.
    package static let version = "0.16.0-dev"

    package init(node: String, topics: Topics, registry: ConnectionRegistry, counters: ChatCounters) {
        self.node = node
        self.started = .now
        self.topics = topics
        self.registry = registry
        self.counters = counters
    }

    /// The answer to a question's bytes (a ``ClusterRequest``'s JSON).
    package func answer(_ question: ByteBuffer) async -> ByteBuffer {
        guard let request = try? JSONDecoder().decode(ClusterRequest.self, from: Data(question.readableBytesView))
        else { return ByteBuffer() }
        let reply = await self.answer(request)
        return ByteBuffer(bytes: (try? JSONEncoder().encode(reply)) ?? Data())
    }

    func answer(_ request: ClusterRequest) async -> ClusterReply {
        var reply = ClusterReply(node: self.figures())
        switch request.op {
        case "channels":
            reply.channels = self.topics.memberCounts().filter { !ChannelName.isReserved($0.key) && $0.value > 0 }
        case "disconnect":
            if let user = request.user {
                let code = WebSocketCloseCode(rawValue: request.code ?? 4000)
                reply.count = self.registry.disconnect(user, code: code, reason: request.reason ?? "")
            }
        case "unsubscribe":
            if let user = request.user, let room = request.room {
                reply.count = await self.registry.unsubscribe(user, from: room)
            }
        default:
            break
        }
        return reply
    }

    func figures() -> NodeInfo {
        let sockets = ChatCounters.Endpoint.allCases.reduce(0) { $0 + self.counters.sockets($1).snapshot.open }
        return NodeInfo(
            node: self.node, version: Self.version,
            uptime: Int((ContinuousClock.now - self.started).components.seconds), connections: sockets,
            rooms: self.registry.roomCount, users: self.registry.userCount)
    }
}
