import NIOConcurrencyHelpers
public import NIOCore

/// The in-process broker: fan-out within one process, the default without Redis.
///
/// Fan-out follows ARCHITECTURE.md's hot path: subscribers are grouped by event loop; a publish takes one lock to
/// find the channel's loops and schedules one task per loop, which calls that loop's subscribers in turn. There is no
/// task, copy or lock per recipient: the payload `ByteBuffer` is shared. A callback that is slow delays only its own
/// loop's other subscribers of that message; subscribers that can be slow (a socket) bound their own queues.
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

    /// channel → loop → subscribers. The lock is taken once per publish and per (un)subscribe.
    private let channels = NIOLockedValueBox<[String: [ObjectIdentifier: LoopEntry]]>([:])
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

    /// Publishes without suspending (the local broker never waits).
    public func publishNow(_ payload: ByteBuffer, to channel: String) {
        let loops = self.channels.withLockedValue { $0[channel].map { Array($0.values) } } ?? []
        let event = BrokerEvent.message(BrokerMessage(channel: channel, payload: payload))
        for entry in loops {
            let subscribers = entry.subscribers
            entry.eventLoop.execute {
                for handler in subscribers.value.handlers.values { handler(event) }
            }
        }
    }

    /// Sends `event` (a gap, say) to every subscriber of every channel; used by brokers built on this one.
    public func broadcastToAll(_ event: BrokerEvent) {
        let loops = self.channels.withLockedValue { $0.values.flatMap { Array($0.values) } }
        for entry in loops {
            let subscribers = entry.subscribers
            entry.eventLoop.execute {
                for handler in subscribers.value.handlers.values { handler(event) }
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

    /// Subscribes without suspending. On `eventLoop` the handler is registered before this returns; from another
    /// thread it is registered by a task on `eventLoop`, which runs before any later publish's delivery there.
    public func subscribeNow(
        to channel: String,
        on eventLoop: any EventLoop,
        handler: @escaping @Sendable (BrokerEvent) -> Void
    ) -> Subscription {
        let id = self.nextID.withLockedValue { id in
            id += 1
            return id
        }
        let loopKey = ObjectIdentifier(eventLoop)
        let subscribers = self.channels.withLockedValue { channels -> NIOLoopBoundBox<LoopSubscribers> in
            var loops = channels[channel] ?? [:]
            var entry =
                loops[loopKey]
                ?? LoopEntry(
                    eventLoop: eventLoop,
                    subscribers: NIOLoopBoundBox.makeBoxSendingValue(LoopSubscribers(), eventLoop: eventLoop),
                    count: 0
                )
            entry.count += 1
            loops[loopKey] = entry
            channels[channel] = loops
            return entry.subscribers
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

    private func release(channel: String, loop: ObjectIdentifier) {
        self.channels.withLockedValue { channels in
            guard var loops = channels[channel], var entry = loops[loop] else { return }
            entry.count -= 1
            loops[loop] = entry.count > 0 ? entry : nil
            channels[channel] = loops.isEmpty ? nil : loops
        }
    }
}
