import FoundationEssentials

/// The subprotocol of `/ws` (docs/PROTOCOL.md).
enum ChatProtocol {
    static let name = "switchboard.chat.v1"
}

/// A frame from a client: one JSON object; which fields matter depends on `type`.
struct ClientFrame: Decodable {
    var type: String?
    var room: String?
    var text: String?
    var nick: String?
    var since: String?
    var token: String?
    var ref: String?
}

/// The reply to `join`: the first frame of the history; `more` says `history` frames follow.
struct JoinedFrame: Encodable {
    var type = "joined"
    var room: String
    var messages: [RoomMessage]
    var gap: Bool
    var members: [PresenceMember]
    /// The members with a user id (a token), one entry per user with how many sockets they have in the room.
    var users: [PresenceUser]
    var you: PresenceMember
    var more: Bool
    var ref: String?
}

/// One user in a room, over all their sockets (on every node).
struct PresenceUser: Encodable, Equatable {
    var user: String
    var nick: String
    var connections: Int

    /// The users among `members`, in the order they first appear.
    static func of(_ members: [PresenceMember]) -> [PresenceUser] {
        var users: [PresenceUser] = []
        var index: [String: Int] = [:]
        for member in members {
            guard let user = member.user else { continue }
            if let at = index[user] {
                users[at].connections += 1
            } else {
                index[user] = users.count
                users.append(PresenceUser(user: user, nick: member.nick, connections: 1))
            }
        }
        return users
    }
}

/// More of the history after a `joined` frame, until one with `more: false`.
struct HistoryFrame: Encodable {
    var type = "history"
    var room: String
    var messages: [RoomMessage]
    var more: Bool
}

/// Replies that carry a room or a nickname.
struct SimpleFrame: Encodable {
    var type: String
    var room: String?
    var nick: String?
    var ref: String?
}

/// The first frame on every socket.
struct WelcomeFrame: Encodable {
    struct Limits: Encodable {
        var maxFrameBytes: Int
        var maxTextCharacters: Int
        var maxRooms: Int
        var history: Int
    }

    var type = "welcome"
    var `protocol` = ChatProtocol.name
    /// `required` (send `auth` first), `optional` (tokens accepted, anonymous allowed) or `off` (no tokens).
    var auth: String
    var limits: Limits
}

/// A refused request; the socket stays open.
struct ErrorFrame: Encodable, Error {
    var type = "error"
    var code: String
    var message: String
    /// The room the refused request named, when it named one (so a client can retry a failed join of that room).
    var room: String?
    /// With `rate_limited`: milliseconds until the request would go through.
    var retryAfter: Int?
    var ref: String?

    init(_ code: String, _ message: String, room: String? = nil, retryAfter: Int? = nil, ref: String? = nil) {
        self.code = code
        self.message = message
        self.room = room
        self.retryAfter = retryAfter
        self.ref = ref
    }
}

/// Validation of what clients name.
enum ChatNames {
    /// 1–64 characters of letters, digits, `-`, `_`, `.`.
    static func isValidRoom(_ room: String) -> Bool {
        isName(room, maxLength: 64)
    }

    /// 1–32 characters, no control characters, not only spaces.
    static func isValidNick(_ nick: String) -> Bool {
        guard (1...32).contains(nick.count), nick.contains(where: { $0 != " " }) else { return false }
        return !nick.unicodeScalars.contains { $0.properties.generalCategory == .control }
    }
}
