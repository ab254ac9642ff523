import FoundationEssentials
import HTTPTypes
import Logging
import NIOCore
import Switchboard
import SwitchboardAuth
import SwitchboardRooms
import SwitchboardTopics
import SwitchboardWebSocket

/// `GET /chat` and `GET /subscribe/{channel}`.
struct SocketEndpoints: Sendable {
    let topics: Topics
    let configuration: ChatConfiguration
    let registry: ConnectionRegistry
    let counters: ChatCounters
    /// Whether the broker's connections are up (cheap: no round trip); no socket is opened while they are not.
    let ready: @Sendable () async -> Bool
    let logger: Logger

    private func socketConfiguration(_ endpoint: ChatCounters.Endpoint) -> WebSocketConfiguration {
        WebSocketConfiguration(
            maxFrameSize: self.configuration.maxMessageSize,
            maxMessageSize: self.configuration.maxMessageSize,
            maxQueuedBytes: self.configuration.maxQueuedBytes,
            // Selected when a browser offers it beside bearer.<token> (ChannelAccess), so the token is not echoed.
            subprotocols: [ChannelAccess.subprotocol],
            counters: self.counters.sockets(endpoint)
        )
    }

    private var access: ChannelAccess { ChannelAccess(auth: self.configuration.auth, counters: self.counters) }

    /// The seed's chat: every text message goes to the chat channel (within the `say` limits, see ``ChatSender``);
    /// the socket receives everything on it.
    func chat(_ request: Request) async throws -> Response {
        try self.checkOrigin(request)
        let identity =
            self.configuration.auth.allowsAnonymous ? nil : try await self.access.identity(of: request)
        let lease = try self.lease(request, user: identity?.userID)
        let (topics, channel, configuration) = (self.topics, self.configuration.chatChannel, self.configuration)
        let (registry, counters, logger) = (self.registry, self.counters, self.logger)
        return try await self.upgrade(
            request, to: channel, until: identity?.expiresAt, endpoint: .chat, lease: lease
        ) { socket in
            let sender = ChatSender(
                topics: topics, channel: channel, limits: configuration.rateLimits, registry: registry, lease: lease,
                counters: counters, logger: logger)
            socket.onMessage { socket, message in sender.receive(message, on: socket) }
        }
    }

    /// What `/chat` and `/subscribe` sockets are told when messages may have been lost.
    static let closeOnGap = TopicGapPolicy.close(code: .tryAgainLater, reason: "messages may have been lost; reconnect")

    /// `/subscribe/{channel}`'s message callback: the client may not send.
    private static let refuseMessages: @Sendable (WebSocket, WebSocketMessage) -> Void = { socket, _ in
        socket.close(code: .policyViolation, reason: "receive-only: publish with POST /publish/{channel}")
    }

    /// A receive-only socket for one channel's notifications.
    func subscribe(_ request: Request) async throws -> Response {
        let channel = request.parameters["channel"] ?? ""
        guard ChannelName.isValid(channel) else {
            throw HTTPError(.badRequest, "invalid channel name: 1 to 128 of A-Z a-z 0-9 - _ . :")
        }
        try self.checkOrigin(request)
        let identity = try await self.access.checkRead(channel, request)
        let lease = try self.lease(request, user: identity?.userID)
        return try await self.upgrade(
            request, to: channel, until: identity?.expiresAt, endpoint: .subscribe, lease: lease
        ) { socket in
            socket.onMessage(Self.refuseMessages)
        }
    }

    /// The client's places in the per-address and per-user counts (one count per user over `/ws`, `/subscribe` and
    /// `/chat`); a `503` when it has none left.
    private func lease(_ request: Request, user: String?) throws -> ClientLease? {
        do {
            return try ClientLease.take(
                self.registry, peer: request.remoteAddress, user: user, now: NIODeadline.now().uptimeNanoseconds)
        } catch {
            self.counters.count(.clientSockets)
            throw error
        }
    }

    /// Upgrades to a socket that receives everything on `channel`, subscribed before the 101 is written (so a
    /// client's first message comes back to it); `setUp` registers what handles the client's messages. A socket
    /// authenticated by a token that expires is closed with 4002 at `expiry`: these endpoints have no way to ask
    /// for a fresh one.
    private func upgrade(
        _ request: Request,
        to channel: String,
        until expiry: Date?,
        endpoint: ChatCounters.Endpoint,
        lease: ClientLease?,
        setUp: @escaping @Sendable (WebSocket) -> Void
    ) async throws -> Response {
        // Not before the node can deliver: a socket opened now would miss what is published meanwhile.
        guard await self.ready() else {
            throw HTTPError(
                .serviceUnavailable, "not ready: the message broker is not connected", headers: [.retryAfter: "1"])
        }
        let reservation = try await self.reserve(channel, on: request.eventLoop)
        let response = WebSocket.upgrade(request, configuration: self.socketConfiguration(endpoint)) { socket in
            // The membership ends when the socket closes. The seed's protocol and /subscribe have no message that
            // could say "you missed something", so after a gap the socket is closed with 1013: the client
            // reconnects (and reloads whatever state it shows) instead of silently missing messages.
            reservation.attach(socket, onGap: Self.closeOnGap)
            lease?.opened(socket)
            setUp(socket)
            if let expiry {
                let remaining = TimeAmount.nanoseconds(Int64(max(0, expiry.timeIntervalSinceNow) * 1e9))
                let expires = socket.eventLoop.scheduleTask(in: remaining) {
                    socket.close(code: .tokenExpired, reason: "the token expired; reconnect with a fresh one")
                }
                socket.onClose { _, _, _ in expires.cancel() }
            }
        }
        // A refused handshake (400, 403, 426) never opens a socket: give the place back now.
        if response.status != .switchingProtocols { reservation.release() }
        return response
    }

    private func reserve(_ channel: String, on eventLoop: (any EventLoop)?) async throws -> TopicReservation {
        do {
            return try await self.topics.reserve(channel, on: eventLoop)
        } catch {
            self.logger.error("Subscribing failed", metadata: ["channel": "\(channel)", "error": "\(error)"])
            throw HTTPError(.serviceUnavailable, "the message broker is unavailable")
        }
    }

    /// A browser (it sends `Origin`) may connect only from an allowed page, so no other site can open a socket with
    /// its visitors' cookies; a request without `Origin` is not a browser and is let in unless the operator requires
    /// one. The list comes from the configuration, never from the request's `Host`, which a DNS-rebinding page sets.
    func checkOrigin(_ request: Request) throws {
        if let refusal = self.configuration.origins.refusal(of: request.headers[.origin]) {
            self.counters.count(.originRefused)
            throw HTTPError(.forbidden, refusal)
        }
    }
}
