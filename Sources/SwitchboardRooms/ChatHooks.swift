package import SwitchboardAuth

/// The app's backend asked before a `/ws` socket opens, a member joins a room or a message goes out (Centrifugo's
/// proxy): each optional, each answered within its own timeout, each failing open or closed as configured. The
/// chat's own limits (rate, size, room names, members-only rooms) apply first.
package struct ChatHooks: Sendable {
    /// What a socket's upgrade request carried, for the connect hook.
    package struct ConnectRequest: Sendable {
        /// The headers a backend authenticates by: `cookie`, `authorization`, `origin`, `user-agent`.
        package var headers: [String: String]
        /// The client's address (after trusted proxies).
        package var client: String?

        package init(headers: [String: String], client: String?) {
            self.headers = headers
            self.client = client
        }
    }

    /// The connect hook's answer.
    package enum ConnectDecision: Sendable {
        /// Let the socket in, as this user (or anonymous with `nil`, where anonymous sockets are allowed).
        case accept(Identity?)
        /// Refuse the upgrade (403 with the reason).
        case refuse(String)
    }

    /// The join hook's answer.
    package enum JoinDecision: Sendable {
        case allow
        case refuse(String)
    }

    /// The say hook's answer.
    package enum SayDecision: Sendable {
        /// Send this text (the original, or the backend's rewrite).
        case send(String)
        case reject(String)
    }

    /// Who a member is, for the join and say hooks.
    package struct Member: Sendable {
        package var socket: String
        package var user: String?
        package var nick: String

        package init(socket: String, user: String?, nick: String) {
            self.socket = socket
            self.user = user
            self.nick = nick
        }
    }

    package var connect: (@Sendable (ConnectRequest) async -> ConnectDecision)?
    package var join: (@Sendable (Member, _ room: String) async -> JoinDecision)?
    package var say: (@Sendable (Member, _ room: String, _ text: String) async -> SayDecision)?

    package init(
        connect: (@Sendable (ConnectRequest) async -> ConnectDecision)? = nil,
        join: (@Sendable (Member, _ room: String) async -> JoinDecision)? = nil,
        say: (@Sendable (Member, _ room: String, _ text: String) async -> SayDecision)? = nil
    ) {
        self.connect = connect
        self.join = join
        self.say = say
    }
}
