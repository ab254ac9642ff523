import ArgumentParser
import Foundation
import Logging
import NIOCore
import NIOPosix
import SwitchboardLocks
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardRooms
import SwitchboardRoomsRedis
import Synchronization

/// `bench`: throughput measurements of the pub/sub layers, printed as one line each.
///
/// Speed is measured here, by running the real code on this machine, and never asserted by timed tests.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract:
            "Measure pub/sub throughput: the brokers, publish to local delivery (the RESP decoder's own speed is in "
            + "Benchmarks/).",
        subcommands: [BrokerBench.self]
    )
}

/// Publish-to-delivery throughput of LocalBroker and (with `--redis` or `--redis-cluster`) the Redis brokers, same
/// run, same machine.
struct BrokerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Messages/s from publish to delivery to every local subscriber: embedded broker, then Redis."
    )

    @Option(help: "Redis URLs (redis://host:port), a comma list for independent shards, to also measure against.")
    var redis: String?

    @Option(help: "Seed URLs of a Redis Cluster (a comma list) to measure the sharded broker against instead.")
    var redisCluster: String?

    @Option(help: "Messages to publish per run.")
    var messages = 200_000

    @Option(help: "Local subscribers of each channel, spread over the event loops.")
    var subscribers = 10

    @Option(help: "Channels the messages are spread over, in turn (to spread them over shards).")
    var channels = 1

    @Option(help: "Payload size in bytes.")
    var size = 64

    @Option(help: "Publishes in flight at most (the Redis brokers pipeline them).")
    var window = 1_000

    @Flag(help: "Measure the Redis broker only (for profiling it).")
    var redisOnly = false

    @Flag(help: "With Redis, also room messages: each stored and published by the rooms' script (EVALSHA).")
    var rooms = false

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: self.size)
        // Channels of this process only: several bench processes on one Redis measure the aggregate, each
        // delivering its own messages (as nodes whose rooms differ).
        let prefix = "bench-\(ProcessInfo.processInfo.processIdentifier)"
        let names = (0..<max(1, self.channels)).map { self.channels > 1 ? "\(prefix)-\($0)" : prefix }
        let local = LocalBroker()
        if !self.redisOnly {
            try await self.measure("LocalBroker", broker: local, channels: names, group: group) { n in
                local.publishNow(payload, to: names[n % names.count])
                return nil
            }
        }
        var logger = Logger(label: "switchboard.bench")
        logger.logLevel = .warning
        guard let (router, broker, name, stop) = try await self.redisBroker(group: group, logger: logger) else {
            return try await group.shutdownGracefully()
        }
        let (window, last) = (self.window, self.messages - 1)
        // As a socket publishes: no future per message; the window's last one is awaited.
        try await self.measure(name, broker: broker, channels: names, group: group) { n in
            guard n % window == window - 1 || n == last else {
                broker.publish(payload, to: names[n % names.count], promise: nil)
                return nil
            }
            let promise = group.any().makePromise(of: Void.self)
            broker.publish(payload, to: names[n % names.count], promise: promise)
            return promise.futureResult
        }
        if self.rooms {
            let log = RedisRoomLog(redis: router)
            let text = String(repeating: "x", count: self.size)
            let rooms = names.map { "room:\($0)" }
            try await self.measure("RedisRoomLog", broker: broker, channels: rooms, group: group) { n in
                let room = String(rooms[n % rooms.count].dropFirst(5))
                guard n % window == window - 1 || n == last else {
                    log.post(room: room, nick: "bench", text: text, promise: nil)
                    return nil
                }
                let promise = group.any().makePromise(of: Void.self)
                log.post(room: room, nick: "bench", text: text, promise: promise)
                return promise.futureResult
            }
        }
        await stop()
        try await group.shutdownGracefully()
    }

    /// The Redis router and broker the options name (connected), with what stops them; `nil` without Redis.
    private func redisBroker(
        group: MultiThreadedEventLoopGroup, logger: Logger
    ) async throws -> (any RedisRouter, any RedisFanOut, String, @Sendable () async -> Void)? {
        let router: any RedisRouter
        let broker: any RedisFanOut
        let name: String
        if let seeds = self.redisCluster {
            let configurations = try seeds.split(separator: ",").map { try RedisConfiguration(url: String($0)) }
            let cluster = RedisClusterClient(
                configuration: configurations[0], seeds: configurations.map { .init(host: $0.host, port: $0.port) },
                eventLoopGroup: group, logger: logger)
            cluster.start()
            (router, broker, name) = (
                cluster, RedisClusterBroker(cluster: cluster, eventLoopGroup: group, logger: logger),
                "RedisClusterBroker"
            )
        } else if let urls = self.redis {
            let clients = try urls.split(separator: ",").map {
                RedisClient(
                    configuration: try RedisConfiguration(url: String($0)), eventLoop: group.next(), logger: logger)
            }
            for client in clients { client.start() }
            let shards = RedisShards(clients: clients)
            (router, name) = (shards, clients.count > 1 ? "RedisBroker (\(clients.count) shards)" : "RedisBroker")
            broker = RedisBroker(shards: shards, eventLoopGroup: group, logger: logger, metricsFactory: nil)
        } else {
            return nil
        }
        broker.start()
        guard await broker.waitUntilConnected(timeout: .seconds(5)) else {
            throw ValidationError("cannot connect to Redis: \(await broker.unreadiness(timeout: .seconds(1)) ?? "")")
        }
        let stop: @Sendable () async -> Void = {
            await broker.shutdown()
            for client in router.clients { await client.shutdown() }
        }
        return (router, broker, name, stop)
    }

    /// Subscribes `subscribers` handlers to each of `channels`, publishes `messages` with at most `window`
    /// unconfirmed and at most twice that not yet delivered (so no Redis output buffer fills up and drops the
    /// subscriber: a rate that loses messages is not a throughput), and times until the last delivery.
    private func measure(
        _ name: String,
        broker: some Broker,
        channels: [String],
        group: MultiThreadedEventLoopGroup,
        publish: @escaping @Sendable (Int) -> EventLoopFuture<Void>?
    ) async throws {
        let delivered = Atomic<Int>(0)
        let gaps = Atomic<Int>(0)
        let expected = self.messages * self.subscribers
        var subscriptions: [Subscription] = []
        for channel in channels {
            for _ in 0..<self.subscribers {
                subscriptions.append(
                    try await broker.subscribe(to: channel, on: group.next()) { event in
                        switch event {
                        case .message: delivered.add(1, ordering: .relaxed)
                        case .gap: gaps.add(1, ordering: .relaxed)
                        }
                    }
                )
            }
        }
        let clock = ContinuousClock()
        let start = clock.now
        // Publish from an event loop, as a socket's handler does, in windows of `window` unconfirmed messages.
        let publisher = group.next()
        var sent = 0
        while sent < self.messages {
            let batch = min(self.window, self.messages - sent)
            let first = sent
            try await publisher.flatSubmit { () -> EventLoopFuture<Void> in
                var last: EventLoopFuture<Void>? = nil
                for n in first..<(first + batch) { last = publish(n) ?? last }
                return last ?? publisher.makeSucceededVoidFuture()
            }.value()
            sent += batch
            try await self.waitForDeliveries(delivered, upTo: (sent - 2 * self.window) * self.subscribers)
        }
        let published = clock.now - start
        try await self.waitForDeliveries(delivered, upTo: expected)
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let count = delivered.load(ordering: .relaxed)
        print(
            "\(name): \(self.messages) messages × \(self.subscribers) subscribers, \(self.size) B: "
                + "\(Int(Double(self.messages) / seconds)) messages/s, \(Int(Double(count) / seconds)) deliveries/s "
                + "(\(count)/\(expected) delivered; publishing took \(published), delivery done at \(elapsed))"
                + (gaps.load(ordering: .relaxed) > 0
                    ? "; \(gaps.load(ordering: .relaxed)) gap events: LOST MESSAGES" : "")
        )
        for subscription in subscriptions { subscription.cancel() }
    }

    /// Returns once `delivered` reaches `count`, or once it has not moved for 5 s (messages were lost).
    private func waitForDeliveries(_ delivered: borrowing Synchronization.Atomic<Int>, upTo count: Int) async throws {
        var last = delivered.load(ordering: .relaxed)
        var lastMoved = ContinuousClock.now
        while case let now = delivered.load(ordering: .relaxed), now < count {
            if now != last { (last, lastMoved) = (now, .now) }
            if ContinuousClock.now - lastMoved > .seconds(5) { return }
            try await Task.sleep(for: .microseconds(100))
        }
    }
}
