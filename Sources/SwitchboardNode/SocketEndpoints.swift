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
    let counters: ChatCounters
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

    /// The seed's chat: every text message goes to the chat channel; the socket receives everything on it.
    func chat(_ request: Request) async throws -> Response {
        try self.checkOrigin(request)
        let identity =
            self.configuration.auth.allowsAnonymous ? nil : try await self.access.identity(of: request)
        return try await self.upgrade(
            request, to: self.configuration.chatChannel, until: identity?.expiresAt, endpoint: .chat,
            onMessage: self.publishToChat)
    }

    /// `/chat`'s message callback; made once, not per socket (a closure's captures are a heap object).
    private let publishToChat: @Sendable (WebSocket, WebSocketMessage) -> Void

    /// What `/chat` and `/subscribe` sockets are told when messages may have been lost.
    static let closeOnGap = TopicGapPolicy.close(code: .tryAgainLater, reason: "messages may have been lost; reconnect")

    /// `/subscribe/{channel}`'s message callback: the client may not send.
    private static let refuseMessages: @Sendable (WebSocket, WebSocketMessage) -> Void = { socket, _ in
        socket.close(code: .policyViolation, reason: "receive-only: publish with POST /publish/{channel}")
    }

    init(topics: Topics, configuration: ChatConfiguration, counters: ChatCounters, logger: Logger) {
        self.topics = topics
        self.configuration = configuration
        self.counters = counters
        self.logger = logger
        let channel = configuration.chatChannel
        self.publishToChat = { socket, message in
            guard message.kind == .text else {
                socket.close(code: .unsupportedData, reason: "text messages only")
                return
            }
            let promise = socket.eventLoop.makePromise(of: Void.self)
            promise.futureResult.whenFailure { error in
                // The seed's protocol has no error message, and the message must not vanish without a word: the
                // sender's socket is closed with 1013 (try again later). The broker logs its outage itself.
                logger.debug("Publishing a chat message failed", metadata: ["error": "\(error)"])
                counters.count(.publishFailed)
                socket.close(code: .tryAgainLater, reason: "the message could not be published; try again")
            }
            topics.publish(message.data, to: channel, promise: promise)
        }
    }

    /// A receive-only socket for one channel's notifications.
    func subscribe(_ request: Request) async throws -> Response {
        let channel = request.parameters["channel"] ?? ""
        guard ChannelName.isValid(channel) else {
            throw HTTPError(.badRequest, "invalid channel name: 1 to 128 of A-Z a-z 0-9 - _ . :")
        }
        try self.checkOrigin(request)
        let identity = try await self.access.checkRead(channel, request)
        return try await self.upgrade(
            request, to: channel, until: identity?.expiresAt, endpoint: .subscribe, onMessage: Self.refuseMessages)
    }

    /// Upgrades to a socket that receives everything on `channel`, subscribed before the 101 is written (so a
    /// client's first message comes back to it); `onMessage` handles what the client sends. A socket authenticated by
    /// a token that expires is closed with 4002 at `expiry`: these endpoints have no way to ask for a fresh one.
    private func upgrade(
        _ request: Request,
        to channel: String,
        until expiry: Date?,
        endpoint: ChatCounters.Endpoint,
        onMessage: @escaping @Sendable (WebSocket, WebSocketMessage) -> Void
    ) async throws -> Response {
        let reservation = try await self.reserve(channel, on: request.eventLoop)
        let response = WebSocket.upgrade(request, configuration: self.socketConfiguration(endpoint)) { socket in
            // The membership ends when the socket closes. The seed's protocol and /subscribe have no message that
            // could say "you missed something", so after a gap the socket is closed with 1013: the client
            // reconnects (and reloads whatever state it shows) instead of silently missing messages.
            reservation.attach(socket, onGap: Self.closeOnGap)
            socket.onMessage(onMessage)
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
