import ArgumentParser
import Logging
import NIOCore
import NIOPosix
import SwitchboardLocks
import SwitchboardPubSub
import SwitchboardRedis
import Synchronization

/// `bench`: throughput measurements of the pub/sub layers, printed as one line each.
///
/// Speed is measured here, by running the real code on this machine, and never asserted by timed tests.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure pub/sub throughput: the brokers (publish to local delivery) and the RESP decoder.",
        subcommands: [BrokerBench.self, RESPBench.self]
    )
}

/// Publish-to-delivery throughput of LocalBroker and (with `--redis`) RedisBroker, same run, same machine.
struct BrokerBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "broker",
        abstract: "Messages/s from publish to delivery to every local subscriber: embedded broker, then Redis."
    )

    @Option(help: "A Redis URL (redis://host:port) to also measure RedisBroker against.")
    var redis: String?

    @Option(help: "Messages to publish per run.")
    var messages = 200_000

    @Option(help: "Local subscribers of the channel, spread over the event loops.")
    var subscribers = 10

    @Option(help: "Payload size in bytes.")
    var size = 64

    @Option(help: "Publishes in flight at most (RedisBroker pipelines them).")
    var window = 1_000

    @Flag(help: "Measure RedisBroker only (for profiling it).")
    var redisOnly = false

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: self.size)
        let local = LocalBroker()
        if !self.redisOnly {
            try await self.measure("LocalBroker", broker: local, group: group) { _ in
                local.publishNow(payload, to: "bench")
                return nil
            }
        }
        if let url = self.redis {
            var logger = Logger(label: "switchboard.bench")
            logger.logLevel = .warning
            let redis = RedisBroker(
                configuration: try RedisConfiguration(url: url),
                eventLoopGroup: group,
                logger: logger,
                metricsFactory: nil
            )
            redis.start()
            guard await redis.waitUntilConnected(timeout: .seconds(5)) else {
                throw ValidationError("cannot connect to \(url)")
            }
            let window = self.window
            try await self.measure("RedisBroker", broker: redis, group: group) { n in
                // As a socket publishes: no future per message; the window's last one is awaited.
                guard n % window == window - 1 || n == self.messages - 1 else {
                    redis.publish(payload, to: "bench", promise: nil)
                    return nil
                }
                let promise = group.any().makePromise(of: Void.self)
                redis.publish(payload, to: "bench", promise: promise)
                return promise.futureResult
            }
            await redis.shutdown()
        }
        try await group.shutdownGracefully()
    }

    /// Subscribes, publishes `messages` with at most `window` unconfirmed, and times until the last delivery.
    private func measure(
        _ name: String,
        broker: some Broker,
        group: MultiThreadedEventLoopGroup,
        publish: @escaping @Sendable (Int) -> EventLoopFuture<Void>?
    ) async throws {
        let delivered = Atomic<Int>(0)
        let expected = self.messages * self.subscribers
        var subscriptions: [Subscription] = []
        for _ in 0..<self.subscribers {
            subscriptions.append(
                try await broker.subscribe(to: "bench", on: group.next()) { event in
                    if case .message = event { delivered.add(1, ordering: .relaxed) }
                }
            )
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
        }
        let published = clock.now - start
        while delivered.load(ordering: .relaxed) < expected, clock.now - start < .seconds(120) {
            try await Task.sleep(for: .microseconds(200))
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        let count = delivered.load(ordering: .relaxed)
        print(
            "\(name): \(self.messages) messages × \(self.subscribers) subscribers, \(self.size) B: "
                + "\(Int(Double(self.messages) / seconds)) messages/s, \(Int(Double(count) / seconds)) deliveries/s "
                + "(\(count)/\(expected) delivered; publishing took \(published), delivery done at \(elapsed))"
        )
        for subscription in subscriptions { subscription.cancel() }
    }
}

/// RESP decode throughput for bulk-string replies and pub/sub push messages.
struct RESPBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resp",
        abstract: "RESP decode throughput: bulk strings and pub/sub messages of a given payload size."
    )

    @Option(help: "Payload size in bytes.")
    var size = 64

    @Option(help: "Approximate megabytes of wire data per case.")
    var megabytes = 64

    func run() async throws {
        let payload = String(repeating: "x", count: self.size)
        self.measure("bulk strings", value: "$\(self.size)\r\n\(payload)\r\n")
        self.measure(
            "pub/sub messages (RESP2 arrays)",
            value: "*3\r\n$7\r\nmessage\r\n$4\r\nchat\r\n$\(self.size)\r\n\(payload)\r\n"
        )
        self.measure(
            "pub/sub messages (RESP3 pushes)",
            value: ">3\r\n$7\r\nmessage\r\n$4\r\nchat\r\n$\(self.size)\r\n\(payload)\r\n"
        )
    }

    private func measure(_ name: String, value: String) {
        let count = max(1, self.megabytes * 1024 * 1024 / value.utf8.count)
        var wire = ByteBuffer()
        wire.reserveCapacity(count * value.utf8.count)
        for _ in 0..<count { wire.writeString(value) }
        let bytes = wire.readableBytes
        var decoder = RESPDecoder()
        var decoded = 0
        let clock = ContinuousClock()
        let start = clock.now
        // Reads in 64 KiB chunks, as a socket delivers them, so values straddle chunk boundaries.
        var pending = ByteBuffer()
        while wire.readableBytes > 0 {
            var chunk = wire.readSlice(length: min(65_536, wire.readableBytes))!
            pending.writeBuffer(&chunk)
            while let _ = try? decoder.decode(buffer: &pending) { decoded += 1 }
            pending.discardReadBytes()
        }
        let elapsed = clock.now - start
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        print(
            "RESP decode, \(name), \(self.size) B payload: \(Int(Double(decoded) / seconds)) values/s, "
                + "\(Int(Double(bytes) / seconds / 1_048_576)) MiB/s (\(decoded)/\(count) values)"
        )
    }
}
