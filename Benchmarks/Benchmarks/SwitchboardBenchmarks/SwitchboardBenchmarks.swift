import Benchmark
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SwitchboardJSON
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardTopics
import SwitchboardWebSocket

/// Micro benchmarks of the hot paths: the RESP decoder on pub/sub pushes, the fan-out engine from a publish to its
/// members, and the strict JSON reader on publish bodies. Instructions and allocations are the stable metrics
/// (`swift package --package-path Benchmarks benchmark`); wall-clock ones are the machine's.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.instructions, .mallocCountTotal, .wallClock, .throughput], maxDuration: .seconds(3))

    // MARK: RESP

    // What a subscriber connection reads when 1,000 messages of 100 bytes arrive together: pushes
    // `*3 $7 message $<channel> $<payload>`, decoded one value at a time.
    let pushes: ByteBuffer = {
        var buffer = ByteBuffer()
        let payload = String(repeating: "x", count: 100)
        for _ in 0..<1000 {
            buffer.writeString("*3\r\n$7\r\nmessage\r\n$10\r\nroom:lobby\r\n$\(payload.utf8.count)\r\n\(payload)\r\n")
        }
        return buffer
    }()
    Benchmark("RESP: decode 1,000 pub/sub pushes of 100 bytes", configuration: .init(scalingFactor: .kilo)) {
        benchmark in
        for _ in benchmark.scaledIterations {
            var decoder = RESPDecoder()
            var buffer = pushes
            var count = 0
            while let value = try decoder.decode(buffer: &buffer) {
                blackHole(value)
                count += 1
            }
            precondition(count == 1000)
        }
    }

    // MARK: Fan-out

    // One publish to a topic with 1,000 members on one event loop, until every member has it: framing once, the
    // mailbox, the drain, one resolution per encoding, the hand-out to each member.
    Benchmark("Fan-out: 1 message to 1,000 members of a topic", configuration: .init(scalingFactor: .one)) {
        benchmark, context in
        for _ in benchmark.scaledIterations {
            context.broker.publishNow(context.message, to: "news")
            try await context.loop.submit {}.get()
        }
        precondition(context.counter.received.withLockedValue { $0 } > 0)
    } setup: {
        try await FanOutContext(members: 1000)
    }

    // MARK: JSON

    let publishBody = Array(
        #"{"channel":"orders","data":{"order":1042,"state":"shipped","items":[1,2,3],"note":"left at the door ✓"}}"#
            .utf8)
    Benchmark("JSON: check a publish body (110 bytes)", configuration: .init(scalingFactor: .kilo)) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try JSONText(publishBody))
        }
    }

    let batchBody: [UInt8] = {
        let command = #"{"publish":{"channels":["orders","user:42"],"data":{"order":1042,"state":"shipped"}}}"#
        return Array(#"{"commands":["#.utf8) + Array(Array(repeating: command, count: 100).joined(separator: ",").utf8)
            + Array("]}".utf8)
    }()
    Benchmark("JSON: check and walk a batch of 100 publishes (8.6 KB)") { benchmark in
        for _ in benchmark.scaledIterations {
            let text = try JSONText(batchBody)
            for (_, commands) in text.members(of: text.root) {
                for command in text.elements(of: commands) { blackHole(text.members(of: command)) }
            }
        }
    }
}

/// Counts what the members received.
final class Counter: Sendable {
    let received = NIOLockedValueBox(0)
}

/// A member that counts what it is handed.
final class CountingSink: TopicSink {
    let eventLoop: any EventLoop
    let counter: Counter

    init(eventLoop: any EventLoop, counter: Counter) {
        self.eventLoop = eventLoop
        self.counter = counter
    }

    func receive(_ frames: PreparedFrames, from membership: TopicMembership) {
        self.counter.received.withLockedValue { $0 += frames.count }
    }

    func receiveGap(from membership: TopicMembership) {}
}

/// A topic with members on one event loop of its own, on the embedded broker.
struct FanOutContext: Sendable {
    let broker: LocalBroker
    let loop: any EventLoop
    let counter = Counter()
    let message = ByteBuffer(string: #"{"type":"message","room":"lobby","text":"hello, everyone"}"#)
    let memberships: [TopicMembership]
    let topics: Topics

    init(members: Int) async throws {
        let broker = LocalBroker()
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1).next()
        let topics = Topics(broker: broker, logger: Logger(label: "bench"), metricsFactory: nil)
        var memberships: [TopicMembership] = []
        for _ in 0..<members {
            let reservation = try await topics.reserve("news", on: loop)
            let counter = self.counter
            memberships.append(
                try await loop.submit { reservation.attach(CountingSink(eventLoop: loop, counter: counter)) }.get())
        }
        self.broker = broker
        self.loop = loop
        self.topics = topics
        self.memberships = memberships
    }
}
