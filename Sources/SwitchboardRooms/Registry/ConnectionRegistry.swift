package import Logging
package import NIOCore
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

/// Who a connection counts as for the per-client budgets: its user when it has a verified token, else the address
/// it comes from (the forwarded client's, behind a trusted proxy).
package enum ClientID: Hashable, Sendable, CustomStringConvertible {
    case user(String)
    case address(String)
    /// One socket, by its member id: a client counted by neither (a loopback peer without a token).
    case socket(String)

    package var description: String {
        switch self {
        case .user(let id): "user \(id)"
        case .address(let address): "address \(address)"
        case .socket(let id): "socket \(id)"
        }
    }
}

/// Why a connection could not enter a room.
package enum RoomEntryRefusal: Equatable, Sendable {
    /// The node holds ``ConnectionRegistry/Limits/maxRooms`` rooms.
    case nodeFull
    /// The client created as many rooms as one client may (or the node keeps its last places for others).
    case clientQuota(Int)
}

/// This node's connections by user, by address and by room, and the counts and limits that go with them: the one
/// place where membership on a node is kept (presence is the cluster's record; the fan-out engine's memberships are
/// the delivery paths).
///
/// - A connection with a user (a verified token) is counted for that user, on every socket endpoint; past
///   ``Limits/connectionsPerUser`` a new one is refused. The user's message bucket lives with the count.
/// - A connection is counted for its address (unless the address is exempt, see ``address(of:)``); past
///   ``Limits/socketsPerAddress`` a new one is refused. The address's message bucket lives with the count: one
///   client cannot get around the per-socket limits by opening more sockets.
/// - A connection enters a room when it asks to join it and leaves when it leaves, fails to join or closes; a join
///   that would add a room past ``Limits/maxRooms`` is refused, and so is one that would make its client the creator
///   of more than ``Limits/roomsPerClient`` rooms (rooms are charged to the client whose join created them, until
///   they empty). The last tenth of the room table is kept for clients that created few rooms.
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
        /// WebSocket connections one address may have open on this node.
        package var socketsPerAddress: Int
        /// Messages one address may send over all its connections on this node.
        package var addressMessages: TokenBucket.Limit
        /// Rooms one client (user, or address without a token) may have created and still hold on this node.
        package var roomsPerClient: Int
        /// Whether loopback peers (127.0.0.0/8, ::1) are held to the per-address limits. The node holds them
        /// (unless `--exempt-loopback`); `false` by default here, for tests and benchmarks that open many sockets
        /// from 127.0.0.1.
        package var limitsLoopback: Bool

        package init(
            maxRooms: Int = 10_000, connectionsPerUser: Int = 32,
            userMessages: TokenBucket.Limit = .init(rate: 40, burst: 80), socketsPerAddress: Int = 128,
            addressMessages: TokenBucket.Limit = .init(rate: 100, burst: 200), roomsPerClient: Int = 100,
            limitsLoopback: Bool = false
        ) {
            self.maxRooms = maxRooms
            self.connectionsPerUser = connectionsPerUser
            self.userMessages = userMessages
            self.socketsPerAddress = socketsPerAddress
            self.addressMessages = addressMessages
            self.roomsPerClient = roomsPerClient
            self.limitsLoopback = limitsLoopback
        }

        /// Rooms kept for clients that created fewer than ``smallCreator`` rooms: a tenth of the table.
        var headroom: Int { self.maxRooms / 10 }
        /// A client that created fewer rooms than this may use the headroom.
        var smallCreator: Int { max(1, min(self.roomsPerClient / 10, 10)) }
    }

    private struct User {
        var connections: [ObjectIdentifier: any RegisteredConnection] = [:]
        var messages: TokenBucket
    }

    private struct Address {
        var connections = 0
        var messages: TokenBucket
    }

    private struct Room {
        var connections = 0
        /// Charged with the room while it exists.
        var creator: ClientID?
    }

    private struct State {
        var users: [String: User] = [:]
        var addresses: [String: Address] = [:]
        /// Room → connections of this node in it.
        var rooms: [String: Room] = [:]
        /// Client → rooms it created that still have members here.
        var created: [ClientID: Int] = [:]
    }

    package let limits: Limits
    private let observer: (any RoomOccupancyObserver)?
    private let state = Locked(State())
    /// Refusals for an address's or a user's count, logged once per 10 s with how many.
    private let refusals: ThrottledLog?

    package init(limits: Limits = .init(), observer: (any RoomOccupancyObserver)? = nil, logger: Logger? = nil) {
        self.limits = limits
        self.observer = observer
        self.refusals = logger.map {
            ThrottledLog($0, "Per-client socket limit reached: WebSocket handshakes refused with 503")
        }
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

    // MARK: Addresses

    /// The address a connection from `peer` is counted under: its IP address; `nil` (not counted, not limited) for
    /// no IP address, or a loopback one unless ``Limits/limitsLoopback``.
    package func address(of peer: SocketAddress?) -> String? {
        guard let peer, let ip = peer.ipAddress else { return nil }
        if !self.limits.limitsLoopback, PeerAddress.isLoopback(ip) { return nil }
        return ip
    }

    /// Counts a connection in for `address`; `false` (and nothing counted) if the address has as many as allowed.
    package func admit(address: String, now: UInt64) -> Bool {
        let admitted = self.state.withLock { state in
            var entry =
                state.addresses[address] ?? Address(messages: TokenBucket(self.limits.addressMessages, now: now))
            guard entry.connections < self.limits.socketsPerAddress else { return false }
            entry.connections += 1
            state.addresses[address] = entry
            return true
        }
        if !admitted {
            self.refusals?.note([
                "address": "\(address)", "limit": "\(self.limits.socketsPerAddress) (--max-sockets-per-ip)",
            ])
        }
        return admitted
    }

    /// Counts a connection out of `address`; the address's state goes with its last connection.
    package func release(address: String) {
        self.state.withLock { state in
            guard var entry = state.addresses[address] else { return }
            entry.connections -= 1
            state.addresses[address] = entry.connections > 0 ? entry : nil
        }
    }

    /// Takes a message from `address`'s bucket; `nil` if taken, else nanoseconds to wait.
    package func takeMessage(ofAddress address: String, now: UInt64) -> UInt64? {
        self.state.withLock { $0.addresses[address]?.messages.take(now: now) }
    }

    /// Addresses with connections here.
    package var addressCount: Int { self.state.withLock { $0.addresses.count } }

    // MARK: Rooms

    /// Counts a connection of `client` into `room`; why not (and nothing counted) if that would make more than
    /// ``Limits/maxRooms`` rooms, or the client the creator of more than its share.
    package func enter(_ room: String, client: ClientID?) -> RoomEntryRefusal? {
        self.state.withLock { state in
            if var entry = state.rooms[room] {
                entry.connections += 1
                state.rooms[room] = entry
                return nil
            }
            let limits = self.limits
            guard state.rooms.count < limits.maxRooms else { return .nodeFull }
            if let client {
                let created = state.created[client, default: 0]
                guard created < limits.roomsPerClient else { return .clientQuota(limits.roomsPerClient) }
                // The last places go to clients that created few rooms, so one that took many cannot take them all.
                let left = limits.maxRooms - state.rooms.count
                if left <= limits.headroom, created >= limits.smallCreator { return .clientQuota(created) }
                state.created[client] = created + 1
            }
            state.rooms[room] = Room(connections: 1, creator: client)
            // Under the lock, so the observer sees a room's first entry and last leave in order.
            self.observer?.roomOccupied(room)
            return nil
        }
    }

    /// Counts a connection out of `room`, which it entered.
    package func leave(_ room: String) {
        self.state.withLock { state in
            guard var entry = state.rooms[room] else { return }
            entry.connections -= 1
            if entry.connections > 0 {
                state.rooms[room] = entry
                return
            }
            state.rooms[room] = nil
            if let creator = entry.creator, let created = state.created[creator] {
                state.created[creator] = created > 1 ? created - 1 : nil
            }
            self.observer?.roomVacated(room)
        }
    }

    /// Rooms with members here now.
    package var roomCount: Int { self.state.withLock { $0.rooms.count } }
}
