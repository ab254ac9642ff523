import HTTPTypes
import NIOCore
package import Switchboard
import SwitchboardAuth
import SwitchboardWebSocket

/// `GET /ws`: the rooms protocol of docs/PROTOCOL.md over a WebSocket, one ``RoomSocket`` (and its
/// ``RoomSessionMachine``) per connection.
package struct RoomsEndpoint: Sendable {
    package let context: RoomsContext

    package init(context: RoomsContext) {
        self.context = context
    }

    /// Checks the request (origin, subprotocol, the connect hook) and upgrades it.
    package func upgrade(_ request: Request) async throws -> Response {
        let configuration = self.context.configuration
        if let refusal = configuration.origins.refusal(of: request.headers[.origin]) {
            self.context.counters.count(.originRefused)
            throw HTTPError(.forbidden, refusal)
        }
        let offered = request.headers[.secWebSocketProtocol] ?? ""
        guard offered.split(separator: ",").contains(where: { $0.trimmingHTTPWhitespace() == ChatProtocol.name }) else {
            throw HTTPError(.badRequest, "offer the subprotocol \(ChatProtocol.name) (Sec-WebSocket-Protocol)")
        }
        let preset = try await self.askConnectHook(request)
        // The address's place is taken before the 101; the socket's user is counted by its session (`auth` can come
        // later).
        let lease: ClientLease?
        do {
            lease = try ClientLease.take(
                self.context.registry, peer: request.remoteAddress, user: nil, now: RoomSessionMachine.now())
        } catch {
            self.context.counters.count(.clientSockets)
            throw error
        }
        let socketConfiguration = WebSocketConfiguration(
            maxFrameSize: 64 * 1024,
            maxMessageSize: 64 * 1024,
            maxQueuedBytes: configuration.maxQueuedBytes,
            subprotocols: [ChatProtocol.name],
            counters: self.context.counters.sockets(.rooms)
        )
        let context = self.context
        return WebSocket.upgrade(request, configuration: socketConfiguration) { socket in
            let session = RoomSocket(socket: socket, context: context, address: lease?.address)
            lease?.opened(socket)
            socket.onOpen { _ in session.handle(.opened(preset: preset)) }
            socket.onMessage { _, message in session.handle(.received(message.data, isText: message.kind == .text)) }
            socket.onClose { _, _, _ in session.handle(.closed) }
        }
    }

    /// The connect hook's answer for `request`: the identity the backend vouches for, or `nil`; a refusal is a 403.
    private func askConnectHook(_ request: Request) async throws -> Identity? {
        guard let connect = self.context.configuration.hooks.connect else { return nil }
        var headers: [String: String] = [:]
        for name in [HTTPField.Name.cookie, .authorization, .origin, .userAgent] {
            if let value = request.headers[name] { headers[name.canonicalName] = value }
        }
        let client = request.remoteAddress.flatMap { $0.ipAddress }
        switch await connect(ChatHooks.ConnectRequest(headers: headers, client: client)) {
        case .accept(let identity):
            return identity
        case .refuse(let reason):
            self.context.counters.count(.authRefused)
            throw HTTPError(.forbidden, reason)
        }
    }
}
