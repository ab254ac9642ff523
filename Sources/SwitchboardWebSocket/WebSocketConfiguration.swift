public import NIOCore

/// Limits and timers of a WebSocket connection; every limit on what a peer controls has a safe default.
public struct WebSocketConfiguration: Sendable {
    /// The largest frame payload accepted; larger frames close the connection with 1009.
    public var maxFrameSize: Int
    /// The largest message accepted (after decompression); larger messages close the connection with 1009.
    public var maxMessageSize: Int
    /// The most outbound bytes queued for a peer that does not read; past it the peer is a slow consumer.
    public var maxQueuedBytes: Int
    /// What to do with a slow consumer.
    public var slowConsumerPolicy: SlowConsumerPolicy
    /// How often the server pings; `nil` for never.
    public var pingInterval: TimeAmount?
    /// How long a ping may go unanswered before the connection is closed.
    public var pongTimeout: TimeAmount
    /// How long the connection may see no frame from the peer before it is closed (1001); `nil` for no limit.
    public var idleTimeout: TimeAmount?
    /// How long to wait for the peer's close frame after sending ours before closing TCP.
    public var closeTimeout: TimeAmount
    /// Subprotocols the server speaks, in order of preference; the first the client also offers is chosen.
    public var subprotocols: [String]
    /// Origins allowed to connect (exact `Origin` values, e.g. `https://example.com`); empty allows any. Only
    /// browsers send `Origin`: a request without one (a native app, a server) is judged by ``requiresOrigin``.
    public var allowedOrigins: [String]
    /// Refuse requests that carry no `Origin` at all (403); by default they are let in, since they do not come
    /// from a browser page and must be authenticated some other way.
    public var requiresOrigin: Bool
    /// permessage-deflate (RFC 7692) settings, or `nil` to never negotiate it.
    public var compression: PerMessageDeflateConfiguration?
    /// Where the sockets count what their limits and timers did (slow consumers, violations, timeouts); `nil` for
    /// nowhere.
    public var counters: WebSocketCounters?

    /// What happens to a peer whose queued outbound bytes pass ``maxQueuedBytes``.
    public struct SlowConsumerPolicy: Sendable, Hashable {
        enum Kind: Hashable {
            case close(WebSocketCloseCode)
            case drop
        }

        let kind: Kind
        /// Close the connection with this code (1008 by default): no memory is spent on a peer that cannot keep up.
        public static func close(code: WebSocketCloseCode = .policyViolation) -> SlowConsumerPolicy {
            .init(kind: .close(code))
        }

        /// Drop the messages that do not fit, keep the connection (for streams where the latest value wins).
        public static let dropMessages = SlowConsumerPolicy(kind: .drop)
    }

    /// Creates a configuration.
    public init(
        maxFrameSize: Int = 64 * 1024,
        maxMessageSize: Int = 64 * 1024,
        maxQueuedBytes: Int = 1024 * 1024,
        slowConsumerPolicy: SlowConsumerPolicy = .close(),
        pingInterval: TimeAmount? = .seconds(30),
        pongTimeout: TimeAmount = .seconds(30),
        idleTimeout: TimeAmount? = nil,
        closeTimeout: TimeAmount = .seconds(5),
        subprotocols: [String] = [],
        allowedOrigins: [String] = [],
        requiresOrigin: Bool = false,
        compression: PerMessageDeflateConfiguration? = .init(),
        counters: WebSocketCounters? = nil
    ) {
        self.maxFrameSize = maxFrameSize
        self.maxMessageSize = maxMessageSize
        self.maxQueuedBytes = maxQueuedBytes
        self.slowConsumerPolicy = slowConsumerPolicy
        self.pingInterval = pingInterval
        self.pongTimeout = pongTimeout
        self.idleTimeout = idleTimeout
        self.closeTimeout = closeTimeout
        self.subprotocols = subprotocols
        self.allowedOrigins = allowedOrigins
        self.requiresOrigin = requiresOrigin
        self.compression = compression
        self.counters = counters
    }
}
