public import CoreMetrics
public import Logging
public import NIOCore
public import ServiceLifecycle
import SwitchboardLocks
public import SwitchboardPubSub
import Synchronization

/// A ``Broker`` that fans out through Redis pub/sub, so every process pointed at the same Redis sees every message.
///
/// Each process holds two Redis connections whatever its number of subscribers: a pipelined command connection
/// for `PUBLISH` (which it may share with other Redis users of the process, see ``init(client:eventLoopGroup:
/// backoff:logger:)``) and one subscriber connection multiplexing every channel (reference-counted: `SUBSCRIBE`
/// with a channel's first local subscriber, `UNSUBSCRIBE` after its last). Messages from Redis are delivered from the
/// subscriber connection's loop: direct subscribers (``subscribeDirect(to:handler:)``) are called there, loop
/// subscribers get one task on their loop. Both connections reconnect forever with backoff and jitter; after a
/// reconnection the subscriber connection resubscribes everything and every local subscriber receives
/// ``BrokerEvent/gap``. While Redis is unreachable, publishing fails at once with a ``RedisError``; subscribing
/// still succeeds, and the subscription reaches Redis when it is back.
///
/// Run it as a swift-service-lifecycle `Service` (``run()``), or call ``start()`` and ``shutdown()`` yourself.
///
/// Over several independent Redis servers (``RedisShards``) each channel lives on one shard (jump consistent hash):
/// one command connection and one subscriber connection per shard, a reconnection's gap told to the subscribers of
/// that shard's channels only.
public final class RedisBroker: Broker, Service {
    private let shards: RedisShards
    private var commands: [RedisClient] { self.shards.clients }
    /// Whether the broker made its command clients, so starts and shuts them down with itself.
    private let ownsCommands: Bool
    /// One per shard, in the shards' order.
    private let subscribers: [RedisSubscriber]
    private let fanOut = LocalBroker()
    /// How long `PUBLISH` takes (until Redis answers); `nil` records nothing.
    private let publishTimer: CoreMetrics.Timer?
    /// Publishes so far, for timing one in ``timedPublishEvery``.
    private let publishes = Atomic<Int>(0)
    /// A publish in this many is timed: a timer and a callback per message would cost more than the message.
    static let timedPublishEvery = 64

    /// Creates a broker with connections of its own; call ``start()`` (or ``run()``) to connect.
    ///
    /// - Parameters:
    ///   - configuration: The Redis server; see ``RedisConfiguration/init(url:)``.
    ///   - eventLoopGroup: Where the two connections run (each on one loop of it).
    ///   - backoff: How quickly to retry a lost connection.
    ///   - logger: Where connection changes are logged (warnings when Redis is lost, info when it is back).
    ///   - metricsFactory: Where the publish latency is recorded, as the timer `switchboard_broker_publish_seconds`;
    ///     `nil` records nothing.
    public convenience init(
        configuration: RedisConfiguration,
        eventLoopGroup: any EventLoopGroup,
        backoff: RedisClient.Backoff = .init(),
        logger: Logger,
        metricsFactory: (any MetricsFactory)? = MetricsSystem.factory
    ) {
        let client = RedisClient(
            configuration: configuration, eventLoop: eventLoopGroup.next(), backoff: backoff, logger: logger)
        self.init(
            shards: RedisShards(clients: [client]), ownsCommands: true, eventLoopGroup: eventLoopGroup,
            backoff: backoff, logger: logger, metricsFactory: metricsFactory)
    }

    /// Creates a broker that publishes through `client`, which the process also uses for its other Redis commands
    /// (history, presence), so that the process holds two connections in all. The broker does not start or shut
    /// down `client`: its owner does (run it as a `Service` before the broker).
    ///
    /// - Parameters:
    ///   - client: The command client; the subscriber connection goes to the same server.
    ///   - eventLoopGroup: Where the subscriber connection runs (on one loop of it).
    ///   - backoff: How quickly to retry a lost subscriber connection.
    ///   - logger: Where connection changes are logged.
    ///   - metricsFactory: Where the publish latency is recorded, as the timer `switchboard_broker_publish_seconds`;
    ///     `nil` records nothing.
    public convenience init(
        client: RedisClient,
        eventLoopGroup: any EventLoopGroup,
        backoff: RedisClient.Backoff = .init(),
        logger: Logger,
        metricsFactory: (any MetricsFactory)? = MetricsSystem.factory
    ) {
        self.init(
            shards: RedisShards(clients: [client]), ownsCommands: false, eventLoopGroup: eventLoopGroup,
            backoff: backoff, logger: logger, metricsFactory: metricsFactory)
    }

    /// Creates a broker over independent shards whose command clients the process runs (and uses for its other
    /// Redis commands): one subscriber connection per shard, to the same server as its command client.
    public convenience init(
        shards: RedisShards,
        eventLoopGroup: any EventLoopGroup,
        backoff: RedisClient.Backoff = .init(),
        logger: Logger,
        metricsFactory: (any MetricsFactory)? = MetricsSystem.factory
    ) {
        self.init(
            shards: shards, ownsCommands: false, eventLoopGroup: eventLoopGroup, backoff: backoff, logger: logger,
            metricsFactory: metricsFactory)
    }

    private init(
        shards: RedisShards,
        ownsCommands: Bool,
        eventLoopGroup: any EventLoopGroup,
        backoff: RedisClient.Backoff,
        logger: Logger,
        metricsFactory: (any MetricsFactory)?
    ) {
        self.shards = shards
        self.ownsCommands = ownsCommands
        self.publishTimer = metricsFactory.map {
            CoreMetrics.Timer(label: "switchboard_broker_publish_seconds", dimensions: [], factory: $0)
        }
        let fanOut = self.fanOut
        self.subscribers = shards.clients.map { client in
            RedisSubscriber(
                configuration: client.configuration, eventLoop: eventLoopGroup.next(), backoff: backoff,
                fanOut: fanOut, logger: logger)
        }
    }

    /// The subscriber connection of `channel`'s shard.
    private func subscriber(of channel: String) -> RedisSubscriber {
        self.subscribers[self.shards.shard(of: channel)]
    }

    /// Starts the connections in the background.
    public func start() {
        if self.ownsCommands { for client in self.commands { client.start() } }
        for subscriber in self.subscribers { subscriber.start() }
    }

    /// Starts, runs until graceful shutdown (or cancellation), then closes the connections it owns.
    public func run() async throws {
        self.start()
        try? await gracefulShutdown()
        await self.shutdown()
    }

    /// Waits until both connections are up, or `timeout` passes; returns whether they are.
    public func waitUntilConnected(timeout: Duration) async -> Bool {
        var all = true
        for client in self.commands { all = await client.waitUntilConnected(timeout: timeout) && all }
        for subscriber in self.subscribers { all = await subscriber.waitUntilConnected(timeout: timeout) && all }
        return all
    }

    /// Whether every connection is up right now (for health checks).
    public var isConnected: Bool {
        get async {
            for client in self.commands where await !client.isConnected { return false }
            return await self.subscriberIsConnected
        }
    }

    /// Whether every subscriber connection is up right now (for metrics; the command clients tell their own).
    public var subscriberIsConnected: Bool {
        get async {
            for subscriber in self.subscribers where await !subscriber.isConnected { return false }
            return true
        }
    }

    /// Whether the broker works right now: every subscriber connection is up and every command connection answers a
    /// `PING` within `timeout` (a round trip, so a hung Redis is not reported as healthy).
    ///
    /// - Returns: `nil` when ready, or why not (naming the shard, when there are several).
    public func unreadiness(timeout: Duration) async -> String? {
        let named = { (index: Int, text: String) in
            self.subscribers.count > 1 ? "shard \(index) (\(self.commands[index].configuration)): \(text)" : text
        }
        for (index, subscriber) in self.subscribers.enumerated() where await !subscriber.isConnected {
            return named(index, "the Redis subscriber connection is down")
        }
        for (index, client) in self.commands.enumerated() {
            do {
                try await client.ping(timeout: timeout)
            } catch {
                return named(index, "\(error)")
            }
        }
        return nil
    }

    /// Closes the subscriber connections (and the command connections, if the broker made them) and stops
    /// reconnecting. Subscribers get no further messages.
    public func shutdown() async {
        if self.ownsCommands { for client in self.commands { await client.shutdown() } }
        for subscriber in self.subscribers { await subscriber.shutdown() }
    }

    /// Publishes through Redis; returns once Redis has accepted the message.
    ///
    /// - Throws: ``RedisError``: at once while Redis is unreachable, after the command timeout if it stops
    ///   answering.
    public func publish(_ payload: ByteBuffer, to channel: String) async throws {
        _ = try await self.publishNow(payload, to: channel).value()
    }

    /// Publishes through Redis and returns `PUBLISH`'s answer: how many subscriber connections (processes) got it.
    public func publishCountingReceivers(_ payload: ByteBuffer, to channel: String) async throws -> Int? {
        try await self.publishNow(payload, to: channel).value()
    }

    public func publish(_ payload: ByteBuffer, to channel: String, promise: EventLoopPromise<Void>?) {
        if self.publishTimer != nil,
            self.publishes.wrappingAdd(1, ordering: .relaxed).oldValue % Self.timedPublishEvery == 0
        {
            let published = self.publishNow(payload, to: channel)
            if let promise { published.map { _ in }.cascade(to: promise) }
            return
        }
        // The busy path: no command value, no future of its own, the promise (if any) completed by the reply.
        self.shards.publishNow(payload, to: channel, reply: promise.map { .done($0) } ?? .none)
    }

    /// Publishes without suspending; the future completes once Redis accepted the message, with the number of
    /// subscriber connections (processes, not sockets) that received it.
    @discardableResult
    public func publishNow(_ payload: ByteBuffer, to channel: String) -> EventLoopFuture<Int> {
        let client = self.shards.client(for: channel)
        let reply = client.eventLoop.makePromise(of: Int.self)
        client.publishNow(payload, to: channel, reply: .receivers(reply))
        if let timer = self.publishTimer {
            let start = NIODeadline.now()
            // Only answered publishes: a refusal at once (Redis down) is not a latency.
            reply.futureResult.whenSuccess { _ in timer.recordNanoseconds((NIODeadline.now() - start).nanoseconds) }
        }
        return reply.futureResult
    }

    public func subscribe(
        to channel: String,
        on eventLoop: any EventLoop,
        handler: @escaping @Sendable (BrokerEvent) -> Void
    ) async throws -> Subscription {
        try await self.subscribeNow(to: channel, on: eventLoop, handler: handler).value()
    }

    /// Subscribes without suspending; the future completes when Redis confirmed the subscription (or at once
    /// while Redis is unreachable: the subscription is then made when it is back, followed by a gap event).
    public func subscribeNow(
        to channel: String,
        on eventLoop: any EventLoop,
        handler: @escaping @Sendable (BrokerEvent) -> Void
    ) -> EventLoopFuture<Subscription> {
        self.retaining(channel, self.fanOut.subscribeNow(to: channel, on: eventLoop, handler: handler))
            .hop(to: eventLoop)
    }

    /// Subscribes a direct handler, called on the subscriber connection's loop for every message (see
    /// ``Broker/subscribeDirect(to:handler:)``). Returns when Redis confirmed the subscription, or at once while
    /// Redis is unreachable (the subscription is then made when it is back, followed by a gap event).
    public func subscribeDirect(
        to channel: String,
        handler: @escaping @Sendable (BrokerEvent) -> Void
    ) async throws -> Subscription {
        try await self.retaining(channel, self.fanOut.subscribeDirectNow(to: channel, handler: handler)).value()
    }

    /// Takes a reference to `channel` on the subscriber connection for `local`, released with it.
    private func retaining(_ channel: String, _ local: Subscription) -> EventLoopFuture<Subscription> {
        let subscriber = self.subscriber(of: channel)
        let subscription = Subscription {
            local.cancel()
            subscriber.release(channel)
        }
        return subscriber.retain(channel).map { subscription }
    }

    /// The channels this process is subscribed to in Redis.
    public var subscribedChannels: [String] {
        get async throws {
            var all: [String] = []
            for subscriber in self.subscribers { all += try await subscriber.channels }
            return all
        }
    }
}
