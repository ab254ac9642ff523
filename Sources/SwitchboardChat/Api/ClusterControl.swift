import FoundationEssentials
import Logging
import NIOCore
import SwitchboardLocks
import SwitchboardPubSub

/// A question the server API asks every node (`info`, `channels`, `disconnect`, `unsubscribe`).
struct ClusterRequest: Codable, Sendable {
    var id: String
    /// The asking node: answers go to its reply channel.
    var from: String
    var op: String
    var user: String?
    var room: String?
    var code: UInt16?
    var reason: String?
}

/// One node's answer: always its figures, and what the operation found there.
struct ClusterReply: Codable, Sendable {
    var id: String
    var node: NodeInfo
    /// `channels`: channel → sockets subscribed on this node.
    var channels: [String: Int]?
    /// `disconnect` and `unsubscribe`: sockets acted on at this node.
    var count: Int?
}

/// A node as `GET /api/v1/info` shows it.
struct NodeInfo: Codable, Sendable, Equatable {
    var node: String
    var version: String
    /// Seconds since the node started.
    var uptime: Int
    /// WebSockets open on the node (all endpoints).
    var connections: Int
    /// Rooms with members on the node.
    var rooms: Int
    /// Users (token user ids) with `/ws` sockets on the node.
    var users: Int
}

/// The answers of every node, or of those that answered within the deadline.
struct ClusterAnswers: Sendable {
    var replies: [ClusterReply]
    /// How many nodes the request reached (the broker's count), `nil` if the broker cannot tell.
    var reached: Int?
    /// Fewer nodes answered than the request reached.
    var partial: Bool { self.reached.map { self.replies.count < $0 } ?? false }
}

/// Asks every node through the broker and collects their answers, with a deadline.
///
/// Each node subscribes to one control channel and to a reply channel of its own. A request goes to the control
/// channel; the broker says how many nodes it reached (Redis's `PUBLISH` answer; in process, one), and the asker
/// waits for that many replies or for the deadline, whichever comes first: a node that dies or hangs makes the
/// answer `partial`, never late. The channels are under `switchboard:`, which the publish APIs and
/// `/subscribe/{channel}` refuse, so only nodes (and whoever has Redis itself) reach them.
final class ClusterControl: Sendable {
    static let requestChannel = "switchboard:control"

    static func replyChannel(of node: String) -> String { "switchboard:reply:\(node)" }

    private struct Pending {
        var replies: [ClusterReply] = []
        var reached: Int?
        var waiter: CheckedContinuation<Void, Never>?
        /// The deadline passed.
        var expired = false
        var isDone: Bool { self.expired || (self.reached.map { self.replies.count >= $0 } ?? false) }
    }

    /// This node's id.
    let node: String
    private let broker: any Broker
    private let deadline: TimeAmount
    private let logger: Logger
    private let answer: @Sendable (ClusterRequest) async -> ClusterReply
    private let pending = Locked<[String: Pending]>([:])
    /// The subscriptions, once made; kept for as long as this object lives.
    private let subscribing = Locked<Task<[Subscription], any Error>?>(nil)

    /// Creates the control of node `node`; ``start()`` subscribes.
    ///
    /// - Parameter answer: What this node answers to a request.
    init(
        node: String, broker: any Broker, deadline: TimeAmount, logger: Logger,
        answer: @escaping @Sendable (ClusterRequest) async -> ClusterReply
    ) {
        self.node = node
        self.broker = broker
        self.deadline = deadline
        self.logger = logger
        self.answer = answer
    }

    deinit { self.subscribing.withLock { $0?.cancel() } }

    /// Subscribes to the control and reply channels, in a task: a node answers whether or not it ever asks. With
    /// Redis unreachable the broker subscribes once it is back.
    func start() {
        let broker = self.broker
        let node = self.node
        self.subscribing.withLock { task in
            guard task == nil else { return }
            // Weak: the broker keeps the handlers, and this object keeps the broker.
            task = Task { [weak self] in
                weak let control = self
                let requests = try await broker.subscribeDirect(to: Self.requestChannel) { event in
                    control?.received(request: event)
                }
                let replies = try await broker.subscribeDirect(to: Self.replyChannel(of: node)) { event in
                    control?.received(reply: event)
                }
                return [requests, replies]
            }
        }
    }

    /// Sends `request` (its `id` and `from` are filled in) to every node and returns their answers: all of them,
    /// or those in by the deadline.
    ///
    /// - Throws: The broker's error when the request cannot be sent.
    func ask(_ request: ClusterRequest) async throws -> ClusterAnswers {
        self.start()
        _ = try await self.subscribing.withLock { $0 }?.value
        var request = request
        request.id = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        request.from = self.node
        let id = request.id
        self.pending.withLock { $0[id] = Pending() }
        let reached: Int?
        do {
            let payload = ByteBuffer(bytes: try JSONEncoder().encode(request))
            reached = try await self.broker.publishCountingReceivers(payload, to: Self.requestChannel)
        } catch {
            self.pending.withLock { $0[id] = nil }
            throw error
        }
        let timer = Task { [deadline] in
            try? await Task.sleep(for: .nanoseconds(deadline.nanoseconds))
            self.finish(id)
        }
        defer { timer.cancel() }
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let resumeNow = self.pending.withLock { pending -> Bool in
                guard var entry = pending[id] else { return true }
                entry.reached = reached
                if entry.isDone { return true }
                entry.waiter = waiter
                pending[id] = entry
                return false
            }
            if resumeNow { waiter.resume() }
        }
        let replies = self.pending.withLock { $0.removeValue(forKey: id)?.replies ?? [] }
        return ClusterAnswers(replies: replies, reached: reached)
    }

    /// Ends the wait for `id` (its deadline passed): the answer is what came in.
    private func finish(_ id: String) {
        let waiter = self.pending.withLock { pending -> CheckedContinuation<Void, Never>? in
            let waiter = pending[id]?.waiter
            pending[id]?.waiter = nil
            pending[id]?.expired = true
            return waiter
        }
        waiter?.resume()
    }

    /// A request from some node (this one too): answered in a task, as the handler must not wait.
    private func received(request event: BrokerEvent) {
        guard case .message(let message) = event,
            let request = try? JSONDecoder().decode(ClusterRequest.self, from: Data(message.payload.readableBytesView)),
            ChannelName.isValid(request.from), request.from.utf8.count <= 64
        else {
            self.logger.debug("A cluster request could not be read; ignored")
            return
        }
        let broker = self.broker
        let answer = self.answer
        let logger = self.logger
        Task {
            let reply = await answer(request)
            do {
                let payload = ByteBuffer(bytes: try JSONEncoder().encode(reply))
                try await broker.publish(payload, to: Self.replyChannel(of: request.from))
            } catch {
                logger.warning("Answering a cluster request failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// A node's answer to a request of this one.
    private func received(reply event: BrokerEvent) {
        guard case .message(let message) = event,
            let reply = try? JSONDecoder().decode(ClusterReply.self, from: Data(message.payload.readableBytesView))
        else { return }
        let waiter = self.pending.withLock { pending -> CheckedContinuation<Void, Never>? in
            guard var entry = pending[reply.id] else { return nil }  // late: the deadline passed
            entry.replies.append(reply)
            let waiter = entry.isDone ? entry.waiter : nil
            if waiter != nil { entry.waiter = nil }
            pending[reply.id] = entry
            return waiter
        }
        waiter?.resume()
    }
}
