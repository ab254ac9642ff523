import FoundationEssentials
import NIOConcurrencyHelpers
package import NIOCore
import SwitchboardPubSub

/// Someone in a room: one socket (the same nickname on two sockets is two members; the same user on two sockets
/// is two members with one `user`, which clients show as one person with two connections).
package struct PresenceMember: Codable, Hashable, Sendable {
    /// Unique per socket across nodes.
    package var id: String
    /// The nickname shown for this member, or with a token the name it carries.
    package var nick: String
    /// The user id a token proved; absent for anonymous sockets.
    package var user: String?

    /// Creates a member.
    package init(id: String, nick: String, user: String? = nil) {
        self.id = id
        self.nick = nick
        self.user = user
    }

    /// The member as JSON with sorted keys: stable bytes, as a set member in a store must be.
    package func json() -> String {
        String(decoding: (try? PresenceFrame.encoder.encode(self)) ?? Data(), as: UTF8.self)
    }
}

/// A presence change, sent to the room's members as `{"type":"presence",…}`.
package struct PresenceFrame: Codable, Sendable {
    package var type = "presence"
    package var room: String
    /// `join` or `leave`.
    package var event: String
    package var member: PresenceMember

    package init(room: String, event: String, member: PresenceMember) {
        self.room = room
        self.event = event
        self.member = member
    }

    /// The announcement's JSON.
    package func json() -> ByteBuffer {
        ByteBuffer(bytes: (try? Self.encoder.encode(self)) ?? Data())
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()
}

/// What changed in a room as the cluster sees it, for webhooks: the room got its first member or lost its last one,
/// a member (a user over all their sockets, or an anonymous socket) came or went.
///
/// A store reports each transition once per cluster, computed where presence is recorded (in Redis, inside the
/// change's own script). Leaves wait the store's leave delay: a member or room back within it makes neither the
/// leave nor the return, so a page reload makes no transitions.
package enum PresenceTransition: Sendable, Hashable {
    case roomOccupied(room: String, at: Int64)
    case roomVacated(room: String, at: Int64)
    case memberJoined(PresenceMember, room: String, at: Int64)
    case memberLeft(PresenceMember, room: String, at: Int64)

    /// Milliseconds since 1970, now.
    package static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }
}

/// Who is in which room, across nodes. Join and leave events go out on the room's broker channel, and the changes
/// that make or end a room's or a member's presence are reported to the store's observer as transitions.
///
/// A store applies `enter` and `leave` in the order they are called from one thread (a socket's event loop), and
/// announces each in that order, so a socket that enters and leaves (or changes its nickname and closes) at once
/// can never leave a member behind, whatever the timing of the network.
package protocol PresenceStore: Sendable {
    /// Records `member` in `room` and announces its join; `promise` completes once stored (fails if the store
    /// cannot be reached, say).
    func enter(_ member: PresenceMember, room: String, promise: EventLoopPromise<Void>?)
    /// Removes `member` from `room` and announces its leave, if it was there.
    func leave(_ member: PresenceMember, room: String)
    /// The members of `room`.
    func members(of room: String) async throws -> [PresenceMember]
}

extension PresenceMember {
    /// Who this member is for transitions: the user, or an anonymous socket.
    package var transitionKey: String { self.user.map { "user:\($0)" } ?? "socket:\(self.id)" }
}
