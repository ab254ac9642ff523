import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SwitchboardLocks
import SwitchboardPubSub
import SwitchboardTesting
import SwitchboardTopics
import Testing

@testable import SwitchboardWebSocket

@Suite("Topics: the fan-out engine", .timeLimit(.minutes(1)))
struct TopicsTests {
    @Test("One broker subscription per topic, however many members; released with the last one")
    func oneSubscriptionPerTopic() async throws {
        let broker = CountingBroker()
        let topics = Topics(broker: broker, logger: testLogger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let sinks = (0..<6).map { _ in ProbeSink(on: group.next()) }
        var memberships: [TopicMembership] = []
        for sink in sinks { memberships.append(try await topics.attach(sink, to: "orders.1042")) }
        let unused = try await topics.reserve("orders.1042", on: nil)
        #expect(broker.subscribed == 1)
        #expect(topics.memberCount(of: "orders.1042") == 6)
        #expect(topics.memberCounts() == ["orders.1042": 6])
        #expect(topics.statistics.members == 6 && topics.statistics.topics == 1)

        unused.release()
        for membership in memberships.dropLast() { membership.cancel() }
        #expect(await eventually { topics.memberCount(of: "orders.1042") == 1 })
        #expect(broker.cancelled == 0, "one member is left")
        memberships.last!.cancel()
        memberships.last!.cancel()  // idempotent
        #expect(await eventually { broker.cancelled == 1 })
        #expect(topics.memberCounts().isEmpty && topics.statistics.members == 0)
        #expect(broker.base.subscribedChannels.isEmpty)

        // The topic comes back with a new subscription when needed again.
        _ = try await topics.attach(sinks[0], to: "orders.1042")
        #expect(broker.subscribed == 2)
        try await group.shutdownGracefully()
    }

    @Test("Every member on every loop gets every message, in publish order, whatever thread publishes")
    func orderPerLoop() async throws {
        let broker = LocalBroker()
        let topics = Topics(broker: broker, logger: testLogger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 3)
        let sinks = (0..<9).map { _ in ProbeSink(on: group.next()) }
        for sink in sinks { _ = try await topics.attach(sink, to: "t") }
        // From an event loop (as a socket's handler publishes) and from a task.
        try await group.next().submit {
            for n in 0..<500 { broker.publishNow(payload("L\(n)"), to: "t") }
        }.value()
        for n in 0..<500 { try await topics.publish(payload("T\(n)"), to: "t") }
        let expected = (0..<500).map { "L\($0)" } + (0..<500).map { "T\($0)" }
        for sink in sinks {
            #expect(await eventually { sink.texts.count == 1000 })
            #expect(sink.texts == expected)
        }
        try await group.shutdownGracefully()
    }

    @Test("A held loop catches up with one batch per member; past the byte cap messages drop and a gap marks where")
    func mailboxBatchingAndCap() async throws {
        let broker = LocalBroker()
        let topics = Topics(broker: broker, configuration: .init(maxBacklogBytes: 1000), logger: testLogger)
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let sink = ProbeSink(on: loop.next())
        let other = ProbeSink(on: loop.next())
        _ = try await topics.attach(sink, to: "news")
        _ = try await topics.attach(other, to: "sports")
        let gate = ConditionLock(value: 0)
        loop.next().execute {
            gate.lock(whenValue: 1)
            gate.unlock()
        }
        // 30 × 100 bytes while the loop is held: 10 fit under the 1,000-byte cap, shared with the other topic.
        for n in 0..<30 {
            broker.publishNow(payload(String(format: "%03d", n) + String(repeating: ".", count: 97)), to: "news")
        }
        broker.publishNow(payload("goal"), to: "sports")  // after the cap: dropped too
        gate.lock()
        gate.unlock(withValue: 1)
        #expect(await eventually { sink.events.count == 2 && other.events.count == 1 })
        let first = try #require(sink.events.first)
        guard case .batch(let texts) = first else { Issue.record("expected a batch first, got \(first)"); return }
        #expect(texts.map { $0.prefix(3) } == (0..<10).map { String(format: "%03d", $0)[...] }, "one batch, in order")
        #expect(sink.events.last == .gap, "the lost messages are marked")
        #expect(other.events == [.gap])
        #expect(topics.statistics.droppedForBacklog == 21)
        // Then delivery carries on as usual.
        broker.publishNow(payload("after"), to: "news")
        #expect(await eventually { sink.texts.last == "after" })
        #expect(sink.events.count == 3)
        try await loop.shutdownGracefully()
    }

    @Test("A gap the broker reports reaches every member, in order with the messages around it")
    func brokerGap() async throws {
        let broker = LocalBroker()
        let topics = Topics(broker: broker, logger: testLogger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let sinks = (0..<4).map { _ in ProbeSink(on: group.next()) }
        for sink in sinks { _ = try await topics.attach(sink, to: "t") }
        broker.publishNow(payload("before"), to: "t")
        broker.broadcastToAll(.gap)
        broker.publishNow(payload("after"), to: "t")
        for sink in sinks {
            #expect(await eventually { sink.events.count >= 3 })
            #expect(sink.texts == ["before", "after"])
            #expect(sink.events.contains(.gap))
            let gap = try #require(sink.events.firstIndex(of: .gap))
            #expect(sink.events[..<gap].contains(.batch(["before"])), "the gap comes after what preceded it")
        }
        #expect(topics.statistics.gaps == 1)
        try await group.shutdownGracefully()
    }

    @Test("A text topic drops and counts payloads that are not UTF-8; a binary topic delivers them")
    func payloadKinds() async throws {
        let broker = LocalBroker()
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let text = Topics(broker: broker, logger: testLogger)
        let binary = Topics(broker: broker, configuration: .init(messageKind: .binary), logger: testLogger)
        let textSink = ProbeSink(on: group.next())
        let binarySink = ProbeSink(on: group.next())
        _ = try await text.attach(textSink, to: "t")
        _ = try await binary.attach(binarySink, to: "t")
        broker.publishNow(ByteBuffer(bytes: [0xFF, 0xFE]), to: "t")
        broker.publishNow(payload("ok"), to: "t")
        #expect(await eventually { textSink.texts == ["ok"] && binarySink.texts.count == 2 })
        #expect(text.statistics.droppedInvalid == 1)
        #expect(binary.statistics.droppedInvalid == 0)
        #expect(binarySink.frames.first?.messages.first?.message.kind == .binary)
        try await group.shutdownGracefully()
    }

    @Test("Members with the same encoding on a loop get the same frames; another encoding gets its own, once")
    func framesSharedPerEncoding() async throws {
        let broker = LocalBroker()
        let topics = Topics(broker: broker, logger: testLogger)
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()
        let deflate = try #require(
            PerMessageDeflateNegotiation.negotiate(offers: ["permessage-deflate"], configuration: .init()))
        let compressed = FrameEncoding(deflate)
        let plain = [ProbeSink(on: loop), ProbeSink(on: loop)]
        let zipped = [ProbeSink(on: loop, encoding: compressed), ProbeSink(on: loop, encoding: compressed)]
        for sink in plain + zipped { _ = try await topics.attach(sink, to: "t") }
        let text = String(repeating: "compress me, please. ", count: 20)
        broker.publishNow(payload(text), to: "t")
        #expect(await eventually { (plain + zipped).allSatisfy { $0.frames.count == 1 } })
        func storage(_ sink: ProbeSink) -> UnsafeRawPointer? {
            sink.frames[0].frames[0].withUnsafeReadableBytes { $0.baseAddress }
        }
        #expect(storage(plain[0]) == storage(plain[1]), "one plain frame for both")
        #expect(storage(zipped[0]) == storage(zipped[1]), "one compressed frame for both")
        #expect(storage(plain[0]) != storage(zipped[0]))
        #expect(zipped[0].frames[0].wireSize < plain[0].frames[0].wireSize)
        #expect(plain[0].frames[0].messages[0] === zipped[0].frames[0].messages[0], "framed once")
    }

    @Test("A cancelled membership receives nothing more, cancelled from any thread")
    func cancelFromAnyThread() async throws {
        let broker = LocalBroker()
        let topics = Topics(broker: broker, logger: testLogger)
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()
        let sink = ProbeSink(on: loop)
        let membership = try await topics.attach(sink, to: "t")
        broker.publishNow(payload("one"), to: "t")
        #expect(await eventually { sink.texts == ["one"] })
        #expect(membership.isActive && membership.topic == "t")
        membership.cancel()
        #expect(!membership.isActive)
        try await loop.submit {}.value()  // the detach ran
        broker.publishNow(payload("two"), to: "t")
        try await loop.submit {}.value()
        #expect(sink.texts == ["one"])
        #expect(topics.memberCount(of: "t") == 0)
    }

    @Test("An engine the app lets go lives while memberships need it, no longer; a drain queued after it is safe")
    func engineLifetime() async throws {
        let broker = LocalBroker()
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let sink = ProbeSink(on: loop.next())
        let released = WeakBox()
        var membership: TopicMembership?
        do {
            let topics = Topics(broker: broker, logger: testLogger)
            released.set(topics)
            membership = try await topics.attach(sink, to: "t")
        }
        #expect(!released.isEmpty, "kept by its topic while a member is attached")
        broker.publishNow(payload("one"), to: "t")
        #expect(await eventually { sink.texts == ["one"] })
        // With the loop held, the last membership ends (its detach queued first), then a message comes: the loop
        // runs the detach, which lets the topic and the engine go, then that message's drain.
        let gate = ConditionLock(value: 0)
        loop.next().execute {
            gate.lock(whenValue: 1)
            gate.unlock()
        }
        membership?.cancel()
        membership = nil
        broker.publishNow(payload("two"), to: "t")
        gate.lock()
        gate.unlock(withValue: 1)
        #expect(await eventually { released.isEmpty }, "freed with its last member")
        try await loop.next().submit {}.value()
        #expect(sink.texts == ["one"], "cancelled before the message came")
        #expect(broker.subscribedChannels.isEmpty)
        try await loop.shutdownGracefully()
    }

    @Test("A reservation for a loop holds what is published before the member attaches: nothing missed, in order")
    func heldUntilAttached() async throws {
        let broker = LocalBroker()
        let topics = Topics(broker: broker, logger: testLogger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let early = ProbeSink(on: loop)
        _ = try await topics.attach(early, to: "t")
        let reservation = try await topics.reserve("t", on: loop)
        // Published and drained on the loop (the early member has them) before the late one attaches: as in the
        // moment between a handshake's 101 and its set-up closure.
        broker.publishNow(payload("one"), to: "t")
        broker.broadcastToAll(.gap)
        broker.publishNow(payload("two"), to: "t")
        #expect(await eventually { early.texts == ["one", "two"] })
        let late = ProbeSink(on: loop)
        _ = try await loop.submit { reservation.attach(late) }.value()
        broker.publishNow(payload("three"), to: "t")
        #expect(await eventually { late.texts.count == 3 })
        #expect(late.events == [.batch(["one"]), .gap, .batch(["two"]), .batch(["three"])])
        #expect(early.events == late.events)
        // Without a loop, nothing is held: the old contract (what is published once attached).
        let unheld = try await topics.reserve("t", on: nil)
        broker.publishNow(payload("four"), to: "t")
        #expect(await eventually { late.texts.count == 4 })
        let third = ProbeSink(on: loop)
        _ = try await loop.submit { unheld.attach(third) }.value()
        broker.publishNow(payload("five"), to: "t")
        #expect(await eventually { third.texts == ["five"] })
        try await group.shutdownGracefully()
    }

    @Test("A reservation never attached holds at most maxHeldBytes, then a gap in their place; release stops it")
    func heldIsBounded() async throws {
        let broker = LocalBroker()
        let topics = Topics(broker: broker, configuration: .init(maxHeldBytes: 2_000), logger: testLogger)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let reservation = try await topics.reserve("t", on: loop)
        // 25 messages of 100 bytes, each drained on its own: 20 fit, the 21st overflows.
        for n in 0..<25 {
            broker.publishNow(payload(String(format: "%03d", n) + String(repeating: ".", count: 97)), to: "t")
            try await loop.submit {}.value()
        }
        #expect(topics.statistics.droppedBeforeAttach == 21, "what was held and the message that did not fit")
        let sink = ProbeSink(on: loop)
        _ = try await loop.submit { reservation.attach(sink) }.value()
        #expect(sink.events.first == .gap)
        #expect(sink.texts.map { $0.prefix(3) } == (21..<25).map { String(format: "%03d", $0)[...] })

        let released = try await topics.reserve("u", on: loop)
        released.release()
        broker.publishNow(payload("x"), to: "u")
        try await loop.submit {}.value()
        #expect(topics.memberCounts()["u"] == nil, "released: the topic is gone")
        try await group.shutdownGracefully()
    }
}

/// A weak reference that tasks can share.
private final class WeakBox: Sendable {
    private let reference = NIOLockedValueBox<WeakReference>(WeakReference())

    private struct WeakReference {
        weak var value: Topics?
    }

    func set(_ value: Topics) { self.reference.withLockedValue { $0.value = value } }
    var isEmpty: Bool { self.reference.withLockedValue { $0.value == nil } }
}
