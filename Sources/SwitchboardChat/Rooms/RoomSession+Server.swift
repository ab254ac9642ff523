import Logging
import SwitchboardWebSocket

/// What the server API does to a socket (`POST /api/v1/users/{id}/disconnect` and `…/unsubscribe`).
extension RoomSession {
    /// Closes the socket with the API's code and reason.
    func disconnectedByServer(code: WebSocketCloseCode, reason: String) {
        guard !self.isClosed else { return }
        self.endpoint.logger.info(
            "Socket disconnected through the server API",
            metadata: ["user": "\(self.countedUser ?? "")", "code": "\(code.rawValue)"])
        self.socket.close(code: code, reason: reason)
    }

    /// Takes the socket out of `room`, as its own `leave` would, and tells it with a `left` frame whose reason is
    /// `unsubscribed`. The client may join again (as in Centrifugo): to keep a user out, revoke the room in their
    /// token or make it members-only.
    ///
    /// - Returns: Whether the socket was in the room.
    func unsubscribedByServer(from room: String) -> Bool {
        guard !self.isClosed, let member = self.rooms.removeValue(forKey: room) else { return false }
        member.leave()
        self.endpoint.directory.leave(room)
        if self.present.remove(room) != nil { self.endpoint.presence.leave(self.presenceMember, room: room) }
        self.send(UnsubscribedFrame(room: room))
        return true
    }
}

/// The `left` frame of a socket the server API took out of a room.
struct UnsubscribedFrame: Encodable {
    var type = "left"
    var room: String
    var reason = "unsubscribed"
}
