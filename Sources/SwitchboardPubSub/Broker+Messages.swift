public import NIOCore
import Synchronization

/// What an async subscriber does when it falls behind by more than its buffer.
public struct OverflowPolicy: Sendable, Hashable {
    enum Kind: Hashable {
        case dropOldest
        case dropNewest
    }

    let kind: Kind

    /// Keep the newest messages: the oldest unread one is dropped for each new one (a live feed).
    public static let dropOldest = OverflowPolicy(kind: .dropOldest)
    /// Keep the oldest messages: new ones are dropped until the reader catches up.
    public static let dropNewest = OverflowPolicy(kind: .dropNewest)
}

extension Broker {
    /// Subscribes to `channel` as an async sequence of events, buffering at most `bufferSize` unread ones.
    ///
    /// A reader that falls further behind loses messages by `overflow` and then receives a ``BrokerEvent/gap``, so it
    /// never blocks the publisher or other subscribers. The subscription ends when the returned sequence's
    /// ``BrokerEvents/subscription`` is cancelled or released.
    ///
    /// - Parameters:
    ///   - channel: The channel.
    ///   - eventLoop: Where the broker delivers before the events reach the sequence.
    ///   - bufferSize: The most unread events kept.
    ///   - overflow: Which events to drop when the buffer is full.
    /// - Returns: The events, once the subscription is established.
    /// - Throws: ``BrokerError`` when the subscription cannot be established.
    public func events(
        of channel: String,
        on eventLoop: any EventLoop,
        bufferSize: Int = 1024,
        overflow: OverflowPolicy = .dropOldest
    ) async throws -> BrokerEvents {
        let policy: AsyncStream<BrokerEvent>.Continuation.BufferingPolicy =
            overflow.kind == .dropOldest ? .bufferingNewest(bufferSize) : .bufferingOldest(bufferSize)
        let (stream, continuation) = AsyncStream<BrokerEvent>.makeStream(bufferingPolicy: policy)
        let missed = Atomic<Bool>(false)
        let subscription = try await self.subscribe(to: channel, on: eventLoop) { event in
            // After a loss, the reader first gets a gap as soon as there is room for it, then messages again.
            if missed.load(ordering: .relaxed) {
                if case .dropped = continuation.yield(.gap) { return }
                missed.store(false, ordering: .relaxed)
            }
            if case .dropped = continuation.yield(event) { missed.store(true, ordering: .relaxed) }
        }
        continuation.onTermination = { _ in subscription.cancel() }
        return BrokerEvents(stream: stream, subscription: subscription)
    }
}

/// A subscription's events as an async sequence.
public struct BrokerEvents: AsyncSequence, Sendable {
    public typealias Element = BrokerEvent
    public typealias Failure = Never

    let stream: AsyncStream<BrokerEvent>
    /// The subscription behind the sequence; cancel it to end the sequence's supply.
    public let subscription: Subscription

    public func makeAsyncIterator() -> AsyncStream<BrokerEvent>.AsyncIterator {
        self.stream.makeAsyncIterator()
    }
}
