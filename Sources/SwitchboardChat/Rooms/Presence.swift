import FoundationEssentials
import NIOConcurrencyHelpers
package import NIOCore
package import SwitchboardPubSub

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

/// Who is in which room, across nodes. Join and leave events go out on the room's broker channel.
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

/// Presence in this process's memory (the embedded broker: one node).
package final class InMemoryPresence: PresenceStore {
    private let broker: any Broker
    private let rooms = NIOLockedValueBox<[String: [String: PresenceMember]]>([:])

    package init(broker: any Broker) {
        self.broker = broker
    }

    package func enter(_ member: PresenceMember, room: String, promise: EventLoopPromise<Void>?) {
        // Announced under the lock, so announcements keep the order of the changes they describe.
        self.rooms.withLockedValue { rooms in
            rooms[room, default: [:]][member.id] = member
            self.announce("join", member, room: room)
        }
        promise?.succeed()
    }

    package func leave(_ member: PresenceMember, room: String) {
        self.rooms.withLockedValue { rooms in
            guard rooms[room]?.removeValue(forKey: member.id) != nil else { return }
            if rooms[room]?.isEmpty == true { rooms[room] = nil }
            self.announce("leave", member, room: room)
        }
    }

    package func members(of room: String) async throws -> [PresenceMember] {
        self.rooms.withLockedValue { Array(($0[room] ?? [:]).values) }.sorted { $0.nick < $1.nick }
    }

    private func announce(_ event: String, _ member: PresenceMember, room: String) {
        let frame = PresenceFrame(room: room, event: event, member: member)
        self.broker.publish(frame.json(), to: RoomChannel.name(of: room), promise: nil)
    }
}
