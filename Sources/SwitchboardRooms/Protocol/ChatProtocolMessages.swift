import FoundationEssentials
import SwitchboardAuth

/// The subprotocol of `/ws` (docs/PROTOCOL.md).
package enum ChatProtocol {
    package static let name = "switchboard.chat.v1"
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
package struct JoinedFrame: Encodable, Equatable, Sendable {
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
package struct PresenceUser: Encodable, Equatable, Sendable {
    var user: String
    var nick: String
    var connections: Int

    /// The users among `members`, in the order they first appear.
    package static func of(_ members: [PresenceMember]) -> [PresenceUser] {
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
package struct HistoryFrame: Encodable, Equatable, Sendable {
    var type = "history"
    var room: String
    var messages: [RoomMessage]
    var more: Bool
}

/// Replies that carry a room or a nickname.
package struct SimpleFrame: Encodable, Equatable, Sendable {
    var type: String
    var room: String?
    var nick: String?
    var ref: String?
}

/// The first frame on every socket.
package struct WelcomeFrame: Encodable, Equatable, Sendable {
    package struct Limits: Encodable, Equatable, Sendable {
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
package struct ErrorFrame: Encodable, Equatable, Sendable {
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
package enum ChatNames {
    /// 1–64 characters of letters, digits, `-`, `_`, `.`.
    package static func isValidRoom(_ room: String) -> Bool {
        ChannelName.isName(room, maxLength: 64)
    }
}

/// The reply to a verified `auth`.
package struct AuthenticatedFrame: Encodable, Equatable, Sendable {
    var type = "authenticated"
    var you: PresenceMember
    /// Milliseconds since 1970 when the token expires; absent if it never does.
    var expiresAt: Int64?
    var ref: String?
}

/// Sent `refreshAhead` before the token expires: send `auth` with a fresh token before `expiresAt`.
package struct RefreshFrame: Encodable, Equatable, Sendable {
    var type = "refresh"
    var expiresAt: Int64
}

/// The `left` frame of a socket the server took out of a room: `unsubscribed` (the server API), `revoked` (a
/// refreshed token no longer lists the members-only room).
package struct UnsubscribedFrame: Encodable, Equatable, Sendable {
    var type = "left"
    var room: String
    var reason = "unsubscribed"
}

/// What the server sends a rooms socket (docs/PROTOCOL.md), as the session machine says it.
package enum ServerFrame: Encodable, Equatable, Sendable {
    case welcome(WelcomeFrame)
    case error(ErrorFrame)
    /// `nick`, `left` and `gap`.
    case simple(SimpleFrame)
    case joined(JoinedFrame)
    case history(HistoryFrame)
    case authenticated(AuthenticatedFrame)
    case refresh(RefreshFrame)
    case unsubscribed(UnsubscribedFrame)

    package func encode(to encoder: any Encoder) throws {
        switch self {
        case .welcome(let frame): try frame.encode(to: encoder)
        case .error(let frame): try frame.encode(to: encoder)
        case .simple(let frame): try frame.encode(to: encoder)
        case .joined(let frame): try frame.encode(to: encoder)
        case .history(let frame): try frame.encode(to: encoder)
        case .authenticated(let frame): try frame.encode(to: encoder)
        case .refresh(let frame): try frame.encode(to: encoder)
        case .unsubscribed(let frame): try frame.encode(to: encoder)
        }
    }

    /// An `error` frame.
    static func error(
        _ code: String, _ message: String, room: String? = nil, retryAfter: Int? = nil, ref: String? = nil
    ) -> ServerFrame {
        .error(ErrorFrame(code, message, room: room, retryAfter: retryAfter, ref: ref))
    }

    /// The error code of an `error` frame, else `nil`.
    package var errorCode: String? {
        if case .error(let frame) = self { return frame.code }
        return nil
    }
}
