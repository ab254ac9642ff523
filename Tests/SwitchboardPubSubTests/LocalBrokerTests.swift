import NIOCore
import NIOPosix
import SwitchboardLocks
import SwitchboardPubSub
import Testing

/// Counts deliveries per subscriber and checks their order.
private final class Recorder: Sendable {
    let received = Locked<[Int: [String]]>([:])

    func handler(_ id: Int) -> @Sendable (BrokerEvent) -> Void {
        { event in
            if case .message(let message) = event {
                self.received.withLock { $0[id, default: []].append(String(buffer: message.payload)) }
            }
        }
    }

    func total() -> Int { self.received.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}

private func settle(_ condition: () -> Bool) async throws {
    for _ in 0..<500 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
}

@Suite("LocalBroker", .timeLimit(.minutes(1)))
struct LocalBrokerTests {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)

    @Test("1,000 subscribers on 50 channels across two loops: each gets exactly its channel's messages, in order")
    func fanOut() async throws {
        let broker = LocalBroker()
        let recorder = Recorder()
        var subscriptions: [Subscription] = []
        for id in 0..<1000 {
            let loop = self.group.next()
            subscriptions.append(
                try await broker.subscribe(to: "room-\(id % 50)", on: loop, handler: recorder.handler(id)))
        }
        #expect(broker.subscribedChannels.count == 50)
        for n in 0..<10 {
            for room in 0..<50 { try await broker.publish(ByteBuffer(string: "\(room):\(n)"), to: "room-\(room)") }
        }
        try await settle { recorder.total() == 10_000 }
        #expect(recorder.total() == 10_000)
        recorder.received.withLock { received in
            for id in 0..<1000 {
                #expect(received[id] == (0..<10).map { "\(id % 50):\($0)" }, "subscriber \(id)")
            }
        }
        withExtendedLifetime(subscriptions) {}
    }

    @Test("Cancelling or releasing a subscription stops delivery; the last one removes the channel")
    func unsubscribe() async throws {
        let broker = LocalBroker()
        let recorder = Recorder()
        let loop = self.group.next()
        let kept = try await broker.subscribe(to: "c", on: loop, handler: recorder.handler(1))
        var released: Subscription? = try await broker.subscribe(to: "c", on: loop, handler: recorder.handler(2))
        try await broker.publish(ByteBuffer(string: "one"), to: "c")
        try await settle { recorder.total() == 2 }
        released = nil
        _ = released
        try await broker.publish(ByteBuffer(string: "two"), to: "c")
        try await settle { recorder.total() == 3 }
        try await Task.sleep(for: .milliseconds(50))
        recorder.received.withLock { #expect($0[1] == ["one", "two"] && $0[2] == ["one"]) }
        kept.cancel()
        #expect(kept.isCancelled)
        try await settle { broker.subscribedChannels.isEmpty }
        #expect(broker.subscribedChannels.isEmpty)
    }

    @Test("Async subscribers: in order; a reader that stops is bounded, never blocks the publisher, and sees a gap")
    func asyncSubscriberAndOverflow() async throws {
        let broker = LocalBroker()
        let loop = self.group.next()
        let events = try await broker.events(of: "feed", on: loop, bufferSize: 16, overflow: .dropNewest)
        let start = ContinuousClock.now
        for n in 0..<10_000 { try await broker.publish(ByteBuffer(string: "\(n)"), to: "feed") }
        #expect(ContinuousClock.now - start < .seconds(5), "publishing never waits for the reader")
        try await Task.sleep(for: .milliseconds(100))
        var iterator = events.makeAsyncIterator()
        var received: [BrokerEvent] = []
        for _ in 0..<16 { received.append(await iterator.next()!) }
        // The 16 oldest messages were kept; the rest were dropped without blocking anyone.
        #expect(
            received == (0..<16).map { .message(BrokerMessage(channel: "feed", payload: ByteBuffer(string: "\($0)"))) })
        // With room again, the next message comes after a gap, which tells the reader it missed some.
        try await broker.publish(ByteBuffer(string: "later"), to: "feed")
        #expect(await iterator.next() == .gap)
        #expect(await iterator.next() == .message(BrokerMessage(channel: "feed", payload: ByteBuffer(string: "later"))))
        events.subscription.cancel()
    }

    @Test("A direct subscriber is called inside the publish, on the publisher's thread; a gap reaches it too")
    func direct() async throws {
        let broker = LocalBroker()
        let recorder = Recorder()
        let publisher = self.group.next()
        let onPublisherThread = Locked(true)
        let gaps = Locked(0)
        let subscription = try await broker.subscribeDirect(to: "t") { event in
            if case .gap = event { gaps.withLock { $0 += 1 } }
            if !publisher.inEventLoop { onPublisherThread.withLock { $0 = false } }
            recorder.handler(0)(event)
        }
        try await publisher.submit {
            for n in 0..<100 { broker.publishNow(ByteBuffer(string: "m\(n)"), to: "t") }
            // Delivered already: no task, no hop.
            #expect(recorder.received.withLock { $0[0]?.count } == 100)
            broker.broadcastToAll(.gap)
        }.value()
        #expect(recorder.received.withLock { $0[0] } == (0..<100).map { "m\($0)" })
        #expect(onPublisherThread.withLock { $0 } && gaps.withLock { $0 } == 1)
        subscription.cancel()
        #expect(broker.subscribedChannels.isEmpty)
        broker.publishNow(ByteBuffer(string: "late"), to: "t")
        #expect(recorder.total() == 100)
    }
}
