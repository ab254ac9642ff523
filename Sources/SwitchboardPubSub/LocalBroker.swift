import NIOConcurrencyHelpers
public import NIOCore

/// The in-process broker: fan-out within one process, the default without Redis.
///
/// Fan-out follows ARCHITECTURE.md's hot path: subscribers are grouped by event loop; a publish takes one lock to
/// find the channel's subscribers, calls direct subscribers (``subscribeDirect(to:handler:)``) at once, and
/// schedules one task per loop, which calls that loop's subscribers in turn. There is no task, copy or lock per
/// recipient: the payload `ByteBuffer` is shared. A callback that is slow delays only its own loop's other
/// subscribers of that message; subscribers that can be slow (a socket) bound their own queues.
public final class LocalBroker: Broker {
    /// The subscribers of one channel on one loop; touched only on that loop.
    final class LoopSubscribers {
        var handlers: [Int: @Sendable (BrokerEvent) -> Void] = [:]
    }

    struct LoopEntry {
        let eventLoop: any EventLoop
        let subscribers: NIOLoopBoundBox<LoopSubscribers>
        var count: Int
    }

    struct DirectSubscriber {
        let id: Int
        let handler: @Sendable (BrokerEvent) -> Void
    }

    /// A channel's subscribers. Arrays rather than dictionaries, so that a publish takes a snapshot by retaining
    /// them, not by copying.
    struct ChannelSubscribers {
        var loops: [LoopEntry] = []
        var direct: [DirectSubscriber] = []

        var isEmpty: Bool { self.loops.isEmpty && self.direct.isEmpty }
    }

    /// channel → subscribers. The lock is taken once per publish and per (un)subscribe.
    private let channels = NIOLockedValueBox<[String: ChannelSubscribers]>([:])
    private let nextID = NIOLockedValueBox(0)

    /// Creates an empty broker.
    public init() {}

    public func publish(_ payload: ByteBuffer, to channel: String) async throws {
        self.publishNow(payload, to: channel)
    }

    public func publish(_ payload: ByteBuffer, to channel: String, promise: EventLoopPromise<Void>?) {
        self.publishNow(payload, to: channel)
        promise?.succeed()
    }

    public func publishCountingReceivers(_ payload: ByteBuffer, to channel: String) async throws -> Int? {
        self.publishNow(payload, to: channel)
    }

    /// Publishes without suspending (the local broker never waits). Direct subscribers are called before this
    /// returns, on this thread.
    ///
    /// - Returns: How many subscriptions the message reached.
    @discardableResult
    public func publishNow(_ payload: ByteBuffer, to channel: String) -> Int {
        guard let subscribers = self.channels.withLockedValue({ $0[channel] }) else { return 0 }
        self.deliver(.message(BrokerMessage(channel: channel, payload: payload)), to: subscribers)
        return subscribers.direct.count + subscribers.loops.reduce(0) { $0 + $1.count }
    }

    /// Publishes messages that came together (one read of a Redis subscriber connection): one lock for the batch,
    /// one task per event loop for all of its messages, in order, instead of one per message and loop. Direct
    /// subscribers are called before this returns, on this thread.
    package func publishBatchNow(_ messages: [(channel: String, payload: ByteBuffer)]) {
        guard messages.count > 1 else {
            if let message = messages.first { self.publishNow(message.payload, to: message.channel) }
            return
        }
        // Each distinct channel's subscribers, under one lock (a batch mostly holds few channels).
        var lookup: [String: ChannelSubscribers] = [:]
        self.channels.withLockedValue { channels in
            for message in messages where lookup[message.channel] == nil {
                lookup[message.channel] = channels[message.channel] ?? ChannelSubscribers()
            }
        }
        // Few loops (one per core): found by identity in a small array, not hashed per message.
        var loops: [LoopBatch] = []
        var previous: (channel: String, subscribers: ChannelSubscribers)?
        for message in messages {
            let subscribers: ChannelSubscribers
            if let previous, previous.channel == message.channel {
                subscribers = previous.subscribers
            } else {
                subscribers = lookup[message.channel] ?? ChannelSubscribers()
                previous = (message.channel, subscribers)
            }
            guard !subscribers.isEmpty else { continue }
            let event = BrokerEvent.message(BrokerMessage(channel: message.channel, payload: message.payload))
            for subscriber in subscribers.direct { subscriber.handler(event) }
            for entry in subscribers.loops {
                if let index = loops.firstIndex(where: { $0.eventLoop === entry.eventLoop }) {
                    loops[index].items.append((entry.subscribers, event))
                } else {
                    loops.append(LoopBatch(eventLoop: entry.eventLoop, items: [(entry.subscribers, event)]))
                }
            }
        }
        for batch in loops {
            let items = batch.items
            batch.eventLoop.execute {
                for (subscribers, event) in items {
                    for handler in subscribers.value.handlers.values { handler(event) }
                }
            }
        }
    }

    /// One loop's deliveries of a batch, in order.
    private struct LoopBatch {
        let eventLoop: any EventLoop
        var items: [(NIOLoopBoundBox<LoopSubscribers>, BrokerEvent)] = []
    }

    /// Sends `event` (a gap, say) to every subscriber of `channels`; for brokers built on this one.
    package func broadcast(_ event: BrokerEvent, to channels: [String]) {
        let chosen = self.channels.withLockedValue { all in channels.compactMap { all[$0] } }
        for subscribers in chosen { self.deliver(event, to: subscribers) }
    }

    /// Sends `event` (a gap, say) to every subscriber of every channel; for brokers built on this one.
    package func broadcastToAll(_ event: BrokerEvent) {
        let all = self.channels.withLockedValue { Array($0.values) }
        for subscribers in all { self.deliver(event, to: subscribers) }
    }

    private func deliver(_ event: BrokerEvent, to subscribers: ChannelSubscribers) {
        for subscriber in subscribers.direct { subscriber.handler(event) }
        for entry in subscribers.loops {
            let handlers = entry.subscribers
            entry.eventLoop.execute {
                for handler in handlers.value.handlers.values { handler(event) }
            }
        }
    }

    /// The channels with at least one subscriber.
    public var subscribedChannels: [String] {
        self.channels.withLockedValue { Array($0.keys) }
    }

    public func subscribe(
        to channel: String,
        on eventLoop: any EventLoop,
        handler: @escaping @Sendable (BrokerEvent) -> Void
    ) async throws -> Subscription {
        self.subscribeNow(to: channel, on: eventLoop, handler: handler)
    }

    public func subscribeDirect(
        to channel: String,
        handler: @escaping @Sendable (BrokerEvent) -> Void
    ) async throws -> Subscription {
        self.subscribeDirectNow(to: channel, handler: handler)
    }

    /// Subscribes without suspending. On `eventLoop` the handler is registered before this returns; from another
    /// thread it is registered by a task on `eventLoop`, which runs before any later publish's delivery there.
    public func subscribeNow(
        to channel: String,
        on eventLoop: any EventLoop,
        handler: @escaping @Sendable (BrokerEvent) -> Void
    ) -> Subscription {
        let id = self.makeID()
        let loopKey = ObjectIdentifier(eventLoop)
        let subscribers = self.channels.withLockedValue { channels -> NIOLoopBoundBox<LoopSubscribers> in
            var entry = channels[channel] ?? ChannelSubscribers()
            defer { channels[channel] = entry }
            if let index = entry.loops.firstIndex(where: { ObjectIdentifier($0.eventLoop) == loopKey }) {
                entry.loops[index].count += 1
                return entry.loops[index].subscribers
            }
            let subscribers = NIOLoopBoundBox.makeBoxSendingValue(LoopSubscribers(), eventLoop: eventLoop)
            entry.loops.append(LoopEntry(eventLoop: eventLoop, subscribers: subscribers, count: 1))
            return subscribers
        }
        // Registering through the loop's queue keeps order with deliveries already queued there.
        if eventLoop.inEventLoop {
            subscribers.value.handlers[id] = handler
        } else {
            eventLoop.execute { subscribers.value.handlers[id] = handler }
        }
        return Subscription { [weak self] in
            eventLoop.execute { subscribers.value.handlers[id] = nil }
            self?.release(channel: channel, loop: loopKey)
        }
    }

    /// Subscribes a direct handler (see ``subscribeDirect(to:handler:)``) without suspending: publishes that start
    /// after this returns reach it.
    public func subscribeDirectNow(
        to channel: String,
        handler: @escaping @Sendable (BrokerEvent) -> Void
    ) -> Subscription {
        let id = self.makeID()
        self.channels.withLockedValue { channels in
            channels[channel, default: ChannelSubscribers()].direct.append(DirectSubscriber(id: id, handler: handler))
        }
        return Subscription { [weak self] in
            self?.channels.withLockedValue { channels in
                guard var entry = channels[channel] else { return }
                entry.direct.removeAll { $0.id == id }
                channels[channel] = entry.isEmpty ? nil : entry
            }
        }
    }

    private func makeID() -> Int {
        self.nextID.withLockedValue { id in
            id += 1
            return id
        }
    }

    private func release(channel: String, loop: ObjectIdentifier) {
        self.channels.withLockedValue { channels in
            guard var entry = channels[channel],
                let index = entry.loops.firstIndex(where: { ObjectIdentifier($0.eventLoop) == loop })
            else { return }
            entry.loops[index].count -= 1
            if entry.loops[index].count == 0 { entry.loops.remove(at: index) }
            channels[channel] = entry.isEmpty ? nil : entry
        }
    }
}
