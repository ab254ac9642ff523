import NIOCore
import SwitchboardLocks
import SwitchboardWebSocket

/// The `/ws` sockets of each user (a token's user id) on this node: what the server API's disconnect and
/// unsubscribe act on. A session is in it from its first accepted token until it closes.
final class UserSockets: Sendable {
    private let sockets = Locked<[String: [ObjectIdentifier: NIOLoopBound<RoomSession>]]>([:])

    /// Adds `session` under `user`; called on the session's loop.
    func add(_ session: RoomSession, user: String) {
        let bound = NIOLoopBound(session, eventLoop: session.socket.eventLoop)
        self.sockets.withLock { $0[user, default: [:]][ObjectIdentifier(session)] = bound }
    }

    /// Removes `session` (closed); called on the session's loop.
    func remove(_ session: RoomSession, user: String) {
        self.sockets.withLock { sockets in
            sockets[user]?[ObjectIdentifier(session)] = nil
            if sockets[user]?.isEmpty == true { sockets[user] = nil }
        }
    }

    /// Users with sockets here.
    var userCount: Int { self.sockets.withLock { $0.count } }

    /// Closes every socket of `user` with `code` and `reason`.
    ///
    /// - Returns: How many sockets it closes.
    func disconnect(_ user: String, code: WebSocketCloseCode, reason: String) -> Int {
        let sessions = self.sessions(of: user)
        for session in sessions {
            session.eventLoop.execute { session.value.disconnectedByServer(code: code, reason: reason) }
        }
        return sessions.count
    }

    /// Takes every socket of `user` out of `room`; each is told with a `left` frame (`reason: "unsubscribed"`).
    ///
    /// - Returns: How many of them were in the room.
    func unsubscribe(_ user: String, from room: String) async -> Int {
        var count = 0
        for session in self.sessions(of: user) {
            let left = try? await session.eventLoop.submit { session.value.unsubscribedByServer(from: room) }.value()
            if left == true { count += 1 }
        }
        return count
    }

    private func sessions(of user: String) -> [NIOLoopBound<RoomSession>] {
        self.sockets.withLock { Array(($0[user] ?? [:]).values) }
    }
}
