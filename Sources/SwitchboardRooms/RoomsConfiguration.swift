package import NIOCore
package import SwitchboardAuth

/// The rooms protocol's settings: who may connect and join, how fast, how much history, and the app's hooks.
package struct RoomsConfiguration: Sendable {
    /// Browser pages allowed to open `/ws`.
    package var origins: OriginPolicy
    /// Tokens, anonymous access and members-only rooms.
    package var auth: ChatAuthentication
    /// How fast a socket, and a user, may send, join and rename.
    package var rateLimits: ChatRateLimits
    /// The app's backend, asked before a socket opens, a join and a message (none by default).
    package var hooks: ChatHooks
    /// How much room history is kept and shown.
    package var history: RoomHistoryLimits
    /// How long a join (or re-sync) may take to be answered; past it the client gets `unavailable`.
    package var joinTimeout: TimeAmount
    /// The most bytes queued for a socket that does not read; past it the socket is closed (1008).
    package var maxQueuedBytes: Int
    /// The protocol's own limits on frames, texts and rooms per socket.
    package var limits: RoomsLimits

    package init(
        origins: OriginPolicy = .init(),
        auth: ChatAuthentication = .init(),
        rateLimits: ChatRateLimits = .init(),
        hooks: ChatHooks = .init(),
        history: RoomHistoryLimits = .init(),
        joinTimeout: TimeAmount = .seconds(5),
        maxQueuedBytes: Int = 1024 * 1024,
        limits: RoomsLimits = .init()
    ) {
        self.origins = origins
        self.auth = auth
        self.rateLimits = rateLimits
        self.hooks = hooks
        self.history = history
        self.joinTimeout = joinTimeout
        self.maxQueuedBytes = maxQueuedBytes
        self.limits = limits
    }
}

/// Limits of the rooms protocol; each refusal is an error frame, not a disconnect.
package struct RoomsLimits: Sendable {
    package var maxFrameBytes = 16 * 1024
    package var maxTextCharacters = 4000
    package var maxRoomsPerSocket = 32

    package init() {}
}
