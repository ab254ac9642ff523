package import NIOCore
package import SwitchboardApi
package import SwitchboardAuth
package import SwitchboardRooms

/// The chat's settings as the routes take them: the rooms', the server API's and the node's own endpoints', in one
/// value (what tests and the node build; ``rooms`` and ``api`` are what the modules get).
package struct ChatConfiguration: Sendable {
    /// Browser origins allowed to open WebSockets (exact `Origin` values such as `https://chat.example.com`): the
    /// page's own origin, from the server's configured address (``ChatOrigins``), never from the request's `Host`,
    /// which a DNS-rebinding page controls. Empty refuses every browser.
    package var allowedOrigins: [String]
    /// Refuse WebSocket requests without an `Origin` (by default they are let in: they are not browsers).
    package var requiresOrigin: Bool
    /// Serve `GET /echo` (a conformance and benchmark endpoint: 16 MiB messages, any origin); off by default.
    package var servesEcho: Bool
    /// The bearer token of `POST /publish/{channel}` for every channel; with no token and no ``publishKeys`` the
    /// endpoint is off (404).
    package var publishToken: String?
    /// Publish API keys scoped to channel patterns.
    package var publishKeys: [PublishKey]
    /// Server API keys (`/api/v1`), scoped to operations and channel patterns.
    package var apiKeys: [ApiKey]
    /// The request rate of each key of the API (its own bucket, whichever endpoint it uses).
    package var keyRate = TokenBucket.Limit(rate: 2000, burst: 4000)
    /// Wrong API keys an address may present: a burst, then one a second; past it `429` without a comparison.
    package var failedApiKeys = TokenBucket.Limit(rate: 1, burst: 20)
    /// How long the server API waits for every node's answer (`info`, `channels`, `disconnect`,
    /// `unsubscribe`); past it the answer is `partial`.
    package var clusterDeadline: TimeAmount
    /// The largest body `POST /publish/{channel}` accepts (413 beyond).
    package var maxPublishSize: Int
    /// The largest message a `/chat` client may send (closed with 1009 beyond).
    package var maxMessageSize: Int
    /// The most bytes queued for a socket that does not read; past it the socket is closed (1008).
    package var maxQueuedBytes: Int
    /// The broker channel of the seed's chat at `/chat` (the seed's Ruby app uses `chat`).
    package var chatChannel: String
    /// The most rooms with members on this node; a join that would add one more gets `rooms_full`.
    package var maxRooms: Int
    /// How much room history is kept and for how long (the embedded history; the Redis log takes the same limits).
    package var history: RoomHistoryLimits
    /// How long a `/ws` join (or re-sync) may take to be answered; past it the client gets `unavailable`.
    package var joinTimeout: TimeAmount
    /// Tokens, anonymous access and members-only rooms.
    package var auth: ChatAuthentication
    /// How fast a socket, and a user, may send, join and rename.
    package var rateLimits: ChatRateLimits
    /// The app's backend, asked before a socket opens, a join and a message (none by default).
    package var hooks: ChatHooks = ChatHooks()

    /// Creates a configuration.
    package init(
        allowedOrigins: [String] = [],
        requiresOrigin: Bool = false,
        servesEcho: Bool = false,
        publishToken: String? = nil,
        publishKeys: [PublishKey] = [],
        apiKeys: [ApiKey] = [],
        clusterDeadline: TimeAmount = .seconds(1),
        maxPublishSize: Int = 64 * 1024,
        maxMessageSize: Int = 64 * 1024,
        maxQueuedBytes: Int = 1024 * 1024,
        chatChannel: String = "chat",
        maxRooms: Int = 10_000,
        history: RoomHistoryLimits = .init(),
        joinTimeout: TimeAmount = .seconds(5),
        auth: ChatAuthentication = .init(),
        rateLimits: ChatRateLimits = .init()
    ) {
        self.allowedOrigins = allowedOrigins
        self.requiresOrigin = requiresOrigin
        self.servesEcho = servesEcho
        self.publishToken = publishToken
        self.publishKeys = publishKeys
        self.apiKeys = apiKeys
        self.clusterDeadline = clusterDeadline
        self.maxPublishSize = maxPublishSize
        self.maxMessageSize = maxMessageSize
        self.maxQueuedBytes = maxQueuedBytes
        self.chatChannel = chatChannel
        self.maxRooms = maxRooms
        self.history = history
        self.joinTimeout = joinTimeout
        self.auth = auth
        self.rateLimits = rateLimits
    }

    /// Browser pages allowed to open sockets.
    package var origins: OriginPolicy {
        OriginPolicy(allowed: self.allowedOrigins, requiresOrigin: self.requiresOrigin)
    }

    /// What the rooms protocol (`/ws`) takes.
    package var rooms: RoomsConfiguration {
        RoomsConfiguration(
            origins: self.origins, auth: self.auth, rateLimits: self.rateLimits, hooks: self.hooks,
            history: self.history, joinTimeout: self.joinTimeout, maxQueuedBytes: self.maxQueuedBytes)
    }

    /// What the server API takes.
    package var api: ApiConfiguration {
        var api = ApiConfiguration(
            apiKeys: self.apiKeys, publishKeys: self.publishKeys, publishToken: self.publishToken,
            keyRate: self.keyRate, maxPublishSize: self.maxPublishSize)
        api.limitsLoopback = self.rateLimits.limitsLoopback
        api.failedKeys = self.failedApiKeys
        return api
    }

    /// What the node's registry bounds.
    package var registryLimits: ConnectionRegistry.Limits {
        let limits = self.rateLimits
        return ConnectionRegistry.Limits(
            maxRooms: self.maxRooms, connectionsPerUser: limits.connectionsPerUser,
            userMessages: limits.userSayMessages, socketsPerAddress: limits.socketsPerAddress,
            addressMessages: limits.addressSayMessages, roomsPerClient: limits.roomsPerClient,
            limitsLoopback: limits.limitsLoopback)
    }
}
