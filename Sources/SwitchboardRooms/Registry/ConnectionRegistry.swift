package import SwitchboardAuth
import SwitchboardLocks
package import SwitchboardWebSocket

/// A connection the registry can act on for the server API: close it, or take it out of a room.
package protocol RegisteredConnection: AnyObject, Sendable {
    /// Closes the connection with `code` and `reason` (from any thread).
    func disconnect(code: WebSocketCloseCode, reason: String)
    /// Takes the connection out of `room` and tells it so; whether it was in the room.
    func unsubscribe(from room: String) async -> Bool
}

/// Told when a room gets its first member on this node and when its last one leaves (the embedded history keeps
/// the rooms with members).
package protocol RoomOccupancyObserver: Sendable {
    func roomOccupied(_ room: String)
    func roomVacated(_ room: String)
}

/// This node's connections by user and by room, and the per-user and per-room counts and limits that go with them:
/// the one place where membership on a node is kept (presence is the cluster's record; the fan-out engine's
/// memberships are the delivery paths).
///
/// - A connection with a user (a verified token) is counted for that user; past
///   ``Limits/connectionsPerUser`` a new one is refused. The user's message bucket lives with the count.
/// - A connection enters a room when it asks to join it and leaves when it leaves, fails to join or closes; a join
///   that would add a room past ``Limits/maxRooms`` is refused.
/// - The server API finds a user's connections here (disconnect, unsubscribe).
package final class ConnectionRegistry: Sendable {
    /// What the registry bounds.
    package struct Limits: Sendable {
        /// Rooms with members on this node.
        package var maxRooms: Int
        /// Connections one user may have open on this node.
        package var connectionsPerUser: Int
        /// Messages one user may send over all their connections on this node.
        package var userMessages: TokenBucket.Limit

        package init(
            maxRooms: Int = 10_000, connectionsPerUser: Int = 32,
            userMessages: TokenBucket.Limit = .init(rate: 40, burst: 80)
        ) {
            self.maxRooms = maxRooms
            self.connectionsPerUser = connectionsPerUser
            self.userMessages = userMessages
        }
    }

    private struct User {
        var connections: [ObjectIdentifier: any RegisteredConnection] = [:]
        var messages: TokenBucket
    }

    private struct State {
        var users: [String: User] = [:]
        /// Room → connections of this node in it.
        var rooms: [String: Int] = [:]
    }

    package let limits: Limits
    private let observer: (any RoomOccupancyObserver)?
    private let state = Locked(State())

    package init(limits: Limits = .init(), observer: (any RoomOccupancyObserver)? = nil) {
        self.limits = limits
        self.observer = observer
    }

    // MARK: Users

    /// Counts `connection` in for `user`; `false` (and nothing counted) if the user has as many as allowed.
    package func admit(_ connection: any RegisteredConnection, user: String, now: UInt64) -> Bool {
        self.state.withLock { state in
            var entry = state.users[user] ?? User(messages: TokenBucket(self.limits.userMessages, now: now))
            guard entry.connections.count < self.limits.connectionsPerUser else { return false }
            entry.connections[ObjectIdentifier(connection)] = connection
            state.users[user] = entry
            return true
        }
    }

    /// Counts `connection` out of `user`'s; the user's state goes with their last connection.
    package func release(_ connection: any RegisteredConnection, user: String) {
        self.state.withLock { state in
            state.users[user]?.connections[ObjectIdentifier(connection)] = nil
            if state.users[user]?.connections.isEmpty == true { state.users[user] = nil }
        }
    }

    /// Takes a message from `user`'s bucket; `nil` if taken, else nanoseconds to wait.
    package func takeMessage(of user: String, now: UInt64) -> UInt64? {
        self.state.withLock { $0.users[user]?.messages.take(now: now) }
    }

    /// Users with connections here.
    package var userCount: Int { self.state.withLock { $0.users.count } }

    /// Closes every connection of `user` with `code` and `reason`; how many.
    package func disconnect(_ user: String, code: WebSocketCloseCode, reason: String) -> Int {
        let connections = self.connections(of: user)
        for connection in connections { connection.disconnect(code: code, reason: reason) }
        return connections.count
    }

    /// Takes every connection of `user` out of `room`; how many of them were in it.
    package func unsubscribe(_ user: String, from room: String) async -> Int {
        var count = 0
        for connection in self.connections(of: user) where await connection.unsubscribe(from: room) { count += 1 }
        return count
    }

    private func connections(of user: String) -> [any RegisteredConnection] {
        self.state.withLock { Array(($0.users[user]?.connections ?? [:]).values) }
    }

    // MARK: Rooms

    /// Counts a connection into `room`; `false` (and nothing counted) if that would make more than
    /// ``Limits/maxRooms`` rooms.
    package func enter(_ room: String) -> Bool {
        self.state.withLock { state in
            let count = state.rooms[room] ?? 0
            guard count > 0 || state.rooms.count < self.limits.maxRooms else { return false }
            state.rooms[room] = count + 1
            // Under the lock, so the observer sees a room's first entry and last leave in order.
            if count == 0 { self.observer?.roomOccupied(room) }
            return true
        }
    }

    /// Counts a connection out of `room`, which it entered.
    package func leave(_ room: String) {
        self.state.withLock { state in
            guard let count = state.rooms[room] else { return }
            if count > 1 {
                state.rooms[room] = count - 1
            } else {
                state.rooms[room] = nil
                self.observer?.roomVacated(room)
            }
        }
    }

    /// Rooms with members here now.
    package var roomCount: Int { self.state.withLock { $0.rooms.count } }
}
