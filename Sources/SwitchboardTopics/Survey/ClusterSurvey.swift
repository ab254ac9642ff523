public import Logging
public import NIOCore
public import ServiceLifecycle
import SwitchboardLocks
public import SwitchboardPubSub

/// Asks every node a question through the broker and collects their answers, with a deadline: how a node learns
/// what only the other nodes know (who is connected where, which channels have subscribers), and how it acts on
/// every node at once.
///
/// Each node subscribes to one question channel and to an answer channel of its own. A question goes to the
/// question channel; the broker says how many nodes it reached (Redis's `PUBLISH` answer; in process, one), and
/// the asker waits for that many answers or for the deadline, whichever comes first: a node that dies or hangs
/// makes the answer ``SurveyAnswers/partial``, never late. The channels are under `switchboard:`, which clients
/// may neither read nor publish to.
///
/// Run it as a `Service`: ``run()`` subscribes (this node answers from then on) and unsubscribes at graceful
/// shutdown. Questions and answers are opaque bytes; the node gives them their meaning.
///
/// ```swift
/// let survey = ClusterSurvey(broker: broker, node: "a1", deadline: .seconds(1), logger: logger) { question in
///     ByteBuffer(string: "\(localConnections)")
/// }
/// // in a ServiceGroup with the broker…
/// let answers = try await survey.ask(ByteBuffer(string: "connections?"))
/// ```
public final class ClusterSurvey: Service, Sendable {
    /// The channel every node's questions go to.
    public static let questionChannel = "switchboard:control"

    /// The channel `node`'s answers go to.
    public static func answerChannel(of node: String) -> String { "switchboard:reply:\(node)" }

    private struct Pending {
        var answers: [ByteBuffer] = []
        var reached: Int?
        var waiter: CheckedContinuation<Void, Never>?
        /// The deadline passed.
        var expired = false
        var isDone: Bool { self.expired || (self.reached.map { self.answers.count >= $0 } ?? false) }
    }

    private struct State {
        var pending: [String: Pending] = [:]
        var isSubscribed = false
        /// Asks waiting for the subscriptions.
        var subscribing: [CheckedContinuation<Void, Never>] = []
    }

    /// This node's id: the answer channel's name.
    public let node: String
    private let broker: any Broker
    private let deadline: TimeAmount
    private let logger: Logger
    private let answer: @Sendable (ByteBuffer) async -> ByteBuffer
    private let state = Locked(State())

    /// - Parameters:
    ///   - broker: The broker every node shares.
    ///   - node: This node's id; 1 to 64 bytes of letters, digits and `-_.`.
    ///   - deadline: How long ``ask(_:)`` waits for every node.
    ///   - answer: What this node answers to a question (asked on a task, never on the broker's thread).
    public init(
        broker: any Broker, node: String, deadline: TimeAmount, logger: Logger,
        answer: @escaping @Sendable (ByteBuffer) async -> ByteBuffer
    ) {
        self.broker = broker
        self.node = node
        self.deadline = deadline
        self.logger = logger
        self.answer = answer
    }

    /// Subscribes to the question and answer channels (with Redis unreachable, once it is back), answers until
    /// graceful shutdown, then unsubscribes.
    public func run() async throws {
        // Weak: the broker keeps the handlers, and this object keeps the broker.
        weak let survey = self
        let questions = try await self.broker.subscribeDirect(to: Self.questionChannel) { event in
            survey?.received(question: event)
        }
        let answers = try await self.broker.subscribeDirect(to: Self.answerChannel(of: self.node)) { event in
            survey?.received(answer: event)
        }
        let waiting = self.state.withLock { state in
            state.isSubscribed = true
            defer { state.subscribing = [] }
            return state.subscribing
        }
        for waiter in waiting { waiter.resume() }
        try? await gracefulShutdown()
        questions.cancel()
        answers.cancel()
    }

    /// Sends `question` to every node (this one too) and returns their answers: all of them, or those in by the
    /// deadline.
    ///
    /// - Throws: The broker's error when the question cannot be sent.
    public func ask(_ question: ByteBuffer) async throws -> SurveyAnswers {
        try await self.waitUntilSubscribed()
        let id = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        self.state.withLock { $0.pending[id] = Pending() }
        let reached: Int?
        do {
            var envelope = ByteBuffer(string: "\(id)\n\(self.node)\n")
            var body = question
            envelope.writeBuffer(&body)
            reached = try await self.broker.publishCountingReceivers(envelope, to: Self.questionChannel)
        } catch {
            self.state.withLock { $0.pending[id] = nil }
            throw error
        }
        let timer = Task { [deadline] in
            try? await Task.sleep(for: .nanoseconds(deadline.nanoseconds))
            self.expire(id)
        }
        defer { timer.cancel() }
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let resumeNow = self.state.withLock { state -> Bool in
                guard var entry = state.pending[id] else { return true }
                entry.reached = reached
                if entry.isDone { return true }
                entry.waiter = waiter
                state.pending[id] = entry
                return false
            }
            if resumeNow { waiter.resume() }
        }
        let answers = self.state.withLock { $0.pending.removeValue(forKey: id)?.answers ?? [] }
        return SurveyAnswers(answers: answers, reached: reached)
    }

    /// Waits for ``run()`` to have subscribed, at most the deadline.
    private func waitUntilSubscribed() async throws {
        let timer = Task { [deadline] in
            try? await Task.sleep(for: .nanoseconds(deadline.nanoseconds))
            let waiting = self.state.withLock { state in
                defer { state.subscribing = [] }
                return state.subscribing
            }
            for waiter in waiting { waiter.resume() }
        }
        defer { timer.cancel() }
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let subscribed = self.state.withLock { state in
                if !state.isSubscribed { state.subscribing.append(waiter) }
                return state.isSubscribed
            }
            if subscribed { waiter.resume() }
        }
        guard self.state.withLock({ $0.isSubscribed }) else {
            throw BrokerError("the cluster survey is not subscribed (is it running as a service?)")
        }
    }

    /// Ends the wait for `id` (its deadline passed): the answer is what came in.
    private func expire(_ id: String) {
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            let waiter = state.pending[id]?.waiter
            state.pending[id]?.waiter = nil
            state.pending[id]?.expired = true
            return waiter
        }
        waiter?.resume()
    }

    /// A question from some node (this one too): answered in a task, as the handler must not wait.
    private func received(question event: BrokerEvent) {
        guard case .message(let message) = event else { return }
        var payload = message.payload
        guard let id = payload.readLine(maxLength: 32), let from = payload.readLine(maxLength: 64),
            isNodeID(from)
        else {
            self.logger.debug("A cluster question could not be read; ignored")
            return
        }
        let (broker, answer, logger) = (self.broker, self.answer, self.logger)
        // A task per question: the handler runs on the broker's thread and must not wait; questions are an
        // operator's, not a client's (the channels are closed to clients).
        Task {
            var reply = ByteBuffer(string: "\(id)\n")
            var body = await answer(payload)
            reply.writeBuffer(&body)
            do {
                try await broker.publish(reply, to: Self.answerChannel(of: from))
            } catch {
                logger.warning("Answering a cluster question failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// A node's answer to a question of this one.
    private func received(answer event: BrokerEvent) {
        guard case .message(let message) = event else { return }
        var payload = message.payload
        guard let id = payload.readLine(maxLength: 32) else { return }
        let waiter = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard var entry = state.pending[id] else { return nil }  // late: the deadline passed
            entry.answers.append(payload)
            let waiter = entry.isDone ? entry.waiter : nil
            if waiter != nil { entry.waiter = nil }
            state.pending[id] = entry
            return waiter
        }
        waiter?.resume()
    }
}

/// The answers of every node, or of those that answered within the deadline.
public struct SurveyAnswers: Sendable {
    /// Each node's answer, in the order they came.
    public var answers: [ByteBuffer]
    /// How many nodes the question reached (the broker's count), `nil` if the broker cannot tell.
    public var reached: Int?
    /// Fewer nodes answered than the question reached.
    public var partial: Bool { self.reached.map { self.answers.count < $0 } ?? false }

    public init(answers: [ByteBuffer], reached: Int?) {
        self.answers = answers
        self.reached = reached
    }
}

extension ByteBuffer {
    /// Reads up to the next `\n` (dropping it), at most `maxLength` bytes; `nil` (nothing read) if there is none.
    fileprivate mutating func readLine(maxLength: Int) -> String? {
        let view = self.readableBytesView.prefix(maxLength + 1)
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        let line = self.readString(length: newline - self.readerIndex)
        self.moveReaderIndex(forwardBy: 1)
        return line
    }
}

/// Whether `id` can be a node's id, so its answer channel a channel name: 1 to 64 bytes of `A-Z a-z 0-9 - _ .`.
private func isNodeID(_ id: String) -> Bool {
    !id.isEmpty && id.utf8.count <= 64
        && id.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
}
