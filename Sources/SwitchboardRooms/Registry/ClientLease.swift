import HTTPTypes
package import NIOCore
package import Switchboard
import SwitchboardLocks
package import SwitchboardWebSocket

/// A WebSocket's places in the registry's per-address and per-user counts, taken before the handshake is answered
/// and given back once: at the socket's close, or when the lease goes without a socket having opened (a refused
/// handshake, a connection lost between the `101` and the socket), so no path can leak a place.
///
/// `/chat` and `/subscribe` sockets are counted for their user through a lease (the server API can close them); a
/// `/ws` socket counts its user itself, since its user can arrive later with `auth`, and leases its address only.
package final class ClientLease: Sendable, WebSocketCloseObserver {
    private let registry: ConnectionRegistry
    /// The address counted, if any.
    package let address: String?
    /// The user counted, if any.
    package let user: String?
    /// What the registry holds for a user's socket.
    private let connection = Connection()
    private let released = Locked(false)

    private init(registry: ConnectionRegistry, address: String?, user: String?) {
        self.registry = registry
        self.address = address
        self.user = user
    }

    /// Takes the places of a socket from `peer` (and of `user`, when it has a token): `nil` when nothing is counted
    /// (an exempt address and no user); a `503` naming the limit, with nothing counted, when there is no place.
    package static func take(
        _ registry: ConnectionRegistry, peer: SocketAddress?, user: String?, now: UInt64
    ) throws(HTTPError) -> ClientLease? {
        let address = registry.address(of: peer)
        guard address != nil || user != nil else { return nil }
        if let address, !registry.admit(address: address, now: now) {
            throw HTTPError(
                .serviceUnavailable,
                "too many WebSockets from your address (\(registry.limits.socketsPerAddress)); close some first",
                headers: [.retryAfter: "10"])
        }
        let lease = ClientLease(registry: registry, address: address, user: user)
        if let user, !registry.admit(lease.connection, user: user, now: now) {
            if let address { registry.release(address: address) }
            lease.released.withLock { $0 = true }
            throw HTTPError(
                .serviceUnavailable,
                "too many connections for this user (\(registry.limits.connectionsPerUser)); close some first",
                headers: [.retryAfter: "10"])
        }
        return lease
    }

    /// The socket opened (call in the upgrade's set-up, on its event loop): the server API can close it through the
    /// registry; its close gives the places back.
    package func opened(_ socket: WebSocket) {
        self.connection.socket.withLock { $0.socket = socket }
        if !socket.addCloseObserver(self) { self.release() }
    }

    /// Gives the places back (once).
    package func release() {
        let first = self.released.withLock { released in
            defer { released = true }
            return !released
        }
        guard first else { return }
        if let address { self.registry.release(address: address) }
        if let user { self.registry.release(self.connection, user: user) }
    }

    package func webSocketDidClose() {
        self.release()
    }

    deinit {
        self.release()
    }

    /// A leased socket as the registry holds it: weakly, so the registry does not keep it alive.
    private final class Connection: RegisteredConnection {
        struct Weak {
            weak var socket: WebSocket?
        }

        let socket = Locked(Weak())

        func disconnect(code: WebSocketCloseCode, reason: String) {
            self.socket.withLock { $0.socket }?.close(code: code, reason: reason)
        }

        /// These sockets are in no room.
        func unsubscribe(from room: String) async -> Bool { false }
    }
}
