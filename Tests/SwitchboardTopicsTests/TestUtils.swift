import NIOConcurrencyHelpers
import NIOCore
import SwitchboardLocks
import SwitchboardPubSub
import SwitchboardTopics
import SwitchboardWebSocket
import Testing

/// A sink that records what it receives, checking that every call comes on its loop.
final class ProbeSink: TopicSink, Sendable {
    enum Event: Equatable, Sendable {
        case batch([String])
        case gap
    }

    let eventLoop: any EventLoop
    let frameEncoding: FrameEncoding
    private let recorded = NIOLockedValueBox<[Event]>([])
    private let framesSeen = NIOLockedValueBox<[PreparedFrames]>([])

    init(on eventLoop: any EventLoop, encoding: FrameEncoding = .plain) {
        self.eventLoop = eventLoop
        self.frameEncoding = encoding
    }

    func receive(_ frames: PreparedFrames, from membership: TopicMembership) {
        #expect(self.eventLoop.inEventLoop, "a sink is called on its own loop")
        #expect(frames.encoding == self.frameEncoding)
        self.framesSeen.withLockedValue { $0.append(frames) }
        self.recorded.withLockedValue { $0.append(.batch(frames.messages.map { String(buffer: $0.message.data) })) }
    }

    func receiveGap(from membership: TopicMembership) {
        #expect(self.eventLoop.inEventLoop, "a sink is called on its own loop")
        self.recorded.withLockedValue { $0.append(.gap) }
    }

    var events: [Event] { self.recorded.withLockedValue { $0 } }
    var frames: [PreparedFrames] { self.framesSeen.withLockedValue { $0 } }

    /// Every message received, in order.
    var texts: [String] {
        self.events.flatMap { event -> [String] in
            if case .batch(let texts) = event { return texts }
            return []
        }
    }
}

extension Topics {
    /// Reserves `topic` and attaches `sink` on its loop.
    func attach(_ sink: ProbeSink, to topic: String) async throws -> TopicMembership {
        let reservation = try await self.reserve(topic, on: sink.eventLoop)
        return try await sink.eventLoop.submit { reservation.attach(sink) }.value()
    }
}

/// A `LocalBroker` that counts the subscriptions made and ended through it.
final class CountingBroker: Broker {
    let base = LocalBroker()
    private let counts = NIOLockedValueBox((subscribed: 0, cancelled: 0))

    var subscribed: Int { self.counts.withLockedValue { $0.subscribed } }
    var cancelled: Int { self.counts.withLockedValue { $0.cancelled } }

    func publish(_ payload: ByteBuffer, to channel: String) async throws {
        try await self.base.publish(payload, to: channel)
    }

    func publish(_ payload: ByteBuffer, to channel: String, promise: EventLoopPromise<Void>?) {
        self.base.publish(payload, to: channel, promise: promise)
    }

    func subscribe(
        to channel: String, on eventLoop: any EventLoop, handler: @escaping @Sendable (BrokerEvent) -> Void
    ) async throws -> Subscription {
        try await self.counted(self.base.subscribe(to: channel, on: eventLoop, handler: handler))
    }

    func subscribeDirect(
        to channel: String, handler: @escaping @Sendable (BrokerEvent) -> Void
    ) async throws -> Subscription {
        try await self.counted(self.base.subscribeDirect(to: channel, handler: handler))
    }

    private func counted(_ subscription: Subscription) -> Subscription {
        self.counts.withLockedValue { $0.subscribed += 1 }
        return Subscription {
            self.counts.withLockedValue { $0.cancelled += 1 }
            subscription.cancel()
        }
    }
}

/// A payload of `text`.
func payload(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }
