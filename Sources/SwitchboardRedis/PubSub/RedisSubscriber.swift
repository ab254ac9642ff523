import Logging
import NIOCore
import SwitchboardLocks
import SwitchboardPubSub

/// The process's one subscriber connection: every channel any local subscriber wants, multiplexed and
/// reference-counted.
///
/// `SUBSCRIBE` goes out with a channel's first local subscriber and `UNSUBSCRIBE` after its last. Messages go
/// straight into the local fan-out, which never waits on sockets, so reading from Redis never falls behind because
/// of a slow client. After every reconnection it resubscribes everything, then tells every local subscriber that a
/// gap may have happened.
final class RedisSubscriber: Sendable {
    private final class State {
        /// channel → local subscriber count.
        var counts = SubscriberCounts()
        /// Subscribers waiting for a channel's `SUBSCRIBE` to be confirmed.
        var waiters: [String: [EventLoopPromise<Void>]] = [:]
    }

    private let client: RedisClient
    private let fanOut: LocalBroker
    private let state: NIOLoopBoundBox<State>
    private let logger: Logger

    var eventLoop: any EventLoop { self.client.eventLoop }

    init(
        configuration: RedisConfiguration, eventLoop: any EventLoop, backoff: RedisClient.Backoff, fanOut: LocalBroker,
        logger: Logger
    ) {
        let state = NIOLoopBoundBox.makeBoxSendingValue(State(), eventLoop: eventLoop)
        self.state = state
        self.fanOut = fanOut
        self.logger = logger
        // The closures cannot capture `self` before init ends, so they capture what they need.
        self.client = RedisClient(
            configuration: configuration,
            eventLoop: eventLoop,
            backoff: backoff,
            logger: logger,
            onPush: { value in Self.deliver(value, to: fanOut, logger: logger) },
            onMessages: { messages in
                fanOut.publishBatchNow(messages.map { (String(buffer: $0.channel), $0.payload) })
            },
            onConnected: { connection in Self.resubscribe(connection, state: state, fanOut: fanOut, logger: logger) }
        )
    }

    func start() { self.client.start() }

    func shutdown() async { await self.client.shutdown() }

    var isConnected: Bool {
        get async { await self.client.isConnected }
    }

    func waitUntilConnected(timeout: Duration) async -> Bool {
        await self.client.waitUntilConnected(timeout: timeout)
    }

    /// Adds a local subscriber of `channel`. The future completes once Redis confirmed the subscription, or at
    /// once while Redis is unreachable (the subscription is then made on reconnection, followed by a gap event).
    func retain(_ channel: String) -> EventLoopFuture<Void> {
        self.eventLoop.flatSubmit {
            let state = self.state.value
            let count = state.counts.add(channel)
            guard let connection = self.client.currentConnection else {
                return self.eventLoop.makeSucceededVoidFuture()
            }
            if count > 1 {
                // Already subscribed, or about to be: wait for the same confirmation.
                guard state.waiters[channel] != nil else { return self.eventLoop.makeSucceededVoidFuture() }
                let promise = self.eventLoop.makePromise(of: Void.self)
                state.waiters[channel]!.append(promise)
                return promise.futureResult
            }
            let promise = self.eventLoop.makePromise(of: Void.self)
            state.waiters[channel] = [promise]
            connection.sendNow(RESPCommand("SUBSCRIBE", channel)).whenComplete { result in
                if case .failure(let error) = result {
                    // The connection is failing; reconnection resubscribes and sends the gap.
                    self.logger.debug("SUBSCRIBE failed", metadata: ["channel": "\(channel)", "error": "\(error)"])
                }
                let waiters = self.state.value.waiters.removeValue(forKey: channel) ?? []
                for waiter in waiters { waiter.succeed() }
            }
            return promise.futureResult
        }
    }

    /// Removes a local subscriber of `channel`; the last one unsubscribes from Redis.
    func release(_ channel: String) {
        self.eventLoop.execute {
            let state = self.state.value
            guard state.counts.remove(channel) else { return }
            // Commands on a connection run in order, so a later SUBSCRIBE of the same channel wins.
            _ = self.client.currentConnection?.sendNow(RESPCommand("UNSUBSCRIBE", channel))
        }
    }

    /// The channels subscribed in Redis on behalf of local subscribers.
    var channels: [String] {
        get async throws { try await self.eventLoop.submit { Array(self.state.value.counts.channels) }.value() }
    }

    // MARK: Connection events (on the subscriber's loop)

    private static func resubscribe(
        _ connection: RedisConnection,
        state: NIOLoopBoundBox<State>,
        fanOut: LocalBroker,
        logger: Logger
    ) -> EventLoopFuture<Void> {
        guard !state.value.counts.isEmpty else { return connection.eventLoop.makeSucceededVoidFuture() }
        return self.synchronize(connection, subscribed: [], state: state).map {
            logger.info("Redis subscriptions restored", metadata: ["channels": "\(state.value.counts.count)"])
            // Anything published to these channels while the connection was down is lost to us: say so.
            fanOut.broadcast(.gap, to: Array(state.value.counts.channels))
        }
    }

    /// Brings Redis to exactly the channels with local subscribers. Subscribers that come or go while this runs
    /// are not sent to Redis by `retain`/`release` (the client is not connected until this completes), so it
    /// repeats until nothing changed during a round.
    private static func synchronize(
        _ connection: RedisConnection,
        subscribed: Set<String>,
        state: NIOLoopBoundBox<State>
    ) -> EventLoopFuture<Void> {
        let wanted = Set(state.value.counts.channels)
        guard wanted != subscribed else { return connection.eventLoop.makeSucceededVoidFuture() }
        let commands =
            wanted.subtracting(subscribed).map { RESPCommand("SUBSCRIBE", $0) }
            + subscribed.subtracting(wanted).map { RESPCommand("UNSUBSCRIBE", $0) }
        return EventLoopFuture.andAllSucceed(connection.sendPipelined(commands), on: connection.eventLoop).flatMap {
            self.synchronize(connection, subscribed: wanted, state: state)
        }
    }

    private static func deliver(_ value: RESPValue, to fanOut: LocalBroker, logger: Logger) {
        guard let elements = value.elements, let kind = elements.first?.string else { return }
        switch kind {
        case "message", "smessage":
            guard elements.count == 3, let channel = elements[1].string, let payload = elements[2].bytes else { break }
            fanOut.publishNow(payload, to: channel)
            return
        default:
            break
        }
        logger.debug("Ignoring an unexpected pub/sub push", metadata: ["kind": "\(kind)"])
    }
}
