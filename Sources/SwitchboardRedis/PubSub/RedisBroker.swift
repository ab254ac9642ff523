public import Logging
public import NIOCore
public import SwitchboardPubSub

/// A ``Broker`` that fans out through Redis pub/sub, so every process pointed at the same Redis sees every message.
///
/// Each process holds two Redis connections whatever its number of subscribers: a pipelined command connection
/// for `PUBLISH` and one subscriber connection multiplexing every channel (reference-counted: `SUBSCRIBE` with a
/// channel's first local subscriber, `UNSUBSCRIBE` after its last). Messages from Redis go into an in-process
/// ``LocalBroker`` for the local fan-out. Both connections reconnect forever with backoff and jitter; after a
/// reconnection the subscriber connection resubscribes everything and every local subscriber receives
/// ``BrokerEvent/gap``. While Redis is unreachable, publishing fails at once with a ``RedisError``; subscribing
/// still succeeds, and the subscription reaches Redis when it is back.
///
/// Sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE` for Redis Cluster) is not implemented yet.
public final class RedisBroker: Broker {
    private let commands: RedisClient
    private let subscriber: RedisSubscriber
    private let fanOut = LocalBroker()

    /// Creates a broker; call ``start()`` to connect.
    ///
    /// - Parameters:
    ///   - configuration: The Redis server; see ``RedisConfiguration/init(url:)``.
    ///   - eventLoopGroup: Where the two connections run (each on one loop of it).
    ///   - backoff: How quickly to retry a lost connection.
    ///   - logger: Where connection changes are logged (warnings when Redis is lost, info when it is back).
    public init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup,
        backoff: RedisClient.Backoff = .init(),
        logger: Logger
    ) {
        self.commands = RedisClient(
            configuration: configuration,
            eventLoop: eventLoopGroup.next(),
            backoff: backoff,
            logger: logger
        )
        self.subscriber = RedisSubscriber(
            configuration: configuration,
            eventLoop: eventLoopGroup.next(),
            backoff: backoff,
            fanOut: self.fanOut,
            logger: logger
        )
    }

    /// Starts both connections in the background.
    public func start() {
        self.commands.start()
        self.subscriber.start()
    }

    /// Waits until both connections are up, or `timeout` passes; returns whether they are.
    public func waitUntilConnected(timeout: Duration) async -> Bool {
        async let commands = self.commands.waitUntilConnected(timeout: timeout)
        let subscriber = await self.subscriber.waitUntilConnected(timeout: timeout)
        return await commands && subscriber
    }

    /// Whether both connections are up right now (for health checks).
    public var isConnected: Bool {
        get async {
            let commands = await self.commands.isConnected
            let subscriber = await self.subscriber.isConnected
            return commands && subscriber
        }
    }

    /// Closes both connections and stops reconnecting. Subscribers get no further messages.
    public func shutdown() async {
        await self.commands.shutdown()
        await self.subscriber.shutdown()
    }

    /// Publishes through Redis; returns once Redis has accepted the message.
    ///
    /// - Throws: ``RedisError``: at once while Redis is unreachable, after the command timeout if it stops
    ///   answering.
    public func publish(_ payload: ByteBuffer, to channel: String) async throws {
        _ = try await self.publishNow(payload, to: channel).get()
    }

    public func publish(_ payload: ByteBuffer, to channel: String, promise: EventLoopPromise<Void>?) {
        let published = self.publishNow(payload, to: channel)
        if let promise { published.map { _ in }.cascade(to: promise) }
    }

    /// Publishes without suspending; the future completes once Redis accepted the message, with the number of
    /// subscriber connections (processes, not sockets) that received it.
    @discardableResult
    public func publishNow(_ payload: ByteBuffer, to channel: String) -> EventLoopFuture<Int> {
        self.commands.sendNow(RESPCommand("PUBLISH", [ByteBuffer(string: channel), payload])).flatMapThrowing {
            guard case .integer(let receivers) = $0 else {
                throw RedisError(.unexpectedReply, "PUBLISH answered \($0)")
            }
            return Int(receivers)
        }
    }

    /// Sends any command on the broker's command connection, pipelined with its publishes (for history in
    /// streams, presence, …). Fails at once while Redis is unreachable.
    public func sendNow(_ command: RESPCommand) -> EventLoopFuture<RESPValue> {
        self.commands.sendNow(command)
    }

    /// Sends a command on the command connection and waits for its reply.
    @discardableResult
    public func send(_ command: RESPCommand) async throws -> RESPValue {
        try await self.commands.sendNow(command).get()
    }

    public func subscribe(
        to channel: String,
        on eventLoop: any EventLoop,
        handler: @escaping @Sendable (BrokerEvent) -> Void
    ) async throws -> Subscription {
        try await self.subscribeNow(to: channel, on: eventLoop, handler: handler).get()
    }

    /// Subscribes without suspending; the future completes when Redis confirmed the subscription (or at once
    /// while Redis is unreachable: the subscription is then made when it is back, followed by a gap event).
    public func subscribeNow(
        to channel: String,
        on eventLoop: any EventLoop,
        handler: @escaping @Sendable (BrokerEvent) -> Void
    ) -> EventLoopFuture<Subscription> {
        let local = self.fanOut.subscribeNow(to: channel, on: eventLoop, handler: handler)
        let subscriber = self.subscriber
        let subscription = Subscription {
            local.cancel()
            subscriber.release(channel)
        }
        return subscriber.retain(channel).hop(to: eventLoop).map { subscription }
    }

    /// The channels this process is subscribed to in Redis.
    public var subscribedChannels: [String] {
        get async throws { try await self.subscriber.channels }
    }
}
