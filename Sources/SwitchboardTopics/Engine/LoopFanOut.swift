import CoreMetrics
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SwitchboardWebSocket
import Synchronization

/// One event loop's mailbox, across topics: what the broker's thread hands over, and the one task that drains it.
///
/// A message is appended under the mailbox's lock (one lock per message and loop) and a drain is scheduled only if
/// none is pending. The drain takes everything waiting and delivers it topic by topic: keeping up, that is one
/// message per drain, exactly as fast as a direct write; falling behind, it is a batch, which each socket gets in
/// one write, so an overloaded loop gets cheaper per message and catches up.
final class LoopFanOut: Sendable {
    private enum Entry {
        /// A message, with when it was queued (uptime nanoseconds; 0 when no lag is recorded).
        case message(TopicLoop, PreparedMessage, UInt64)
        case gap(TopicLoop)
    }

    private struct Mailbox {
        var entries: [Entry] = []
        var bytes = 0
        var isDrainScheduled = false
        /// Messages refused since the last drain because the mailbox was full.
        var dropped = 0
        /// Topics that lost messages to the cap and have not yet been told: their gap goes before their next
        /// accepted message, or at the end of the next drain.
        var gapped: [TopicLoop] = []
    }

    let eventLoop: any EventLoop
    private let maxBacklogBytes: Int
    let counters: Topics.Counters
    private let lagTimer: CoreMetrics.Timer?
    private let logger: Logger
    private let mailbox = NIOLockedValueBox(Mailbox())

    /// Holds what it needs of the engine, not the engine: a drain still queued when the engine goes runs safely.
    init(
        eventLoop: any EventLoop, maxBacklogBytes: Int, counters: Topics.Counters, lagTimer: CoreMetrics.Timer?,
        logger: Logger
    ) {
        self.eventLoop = eventLoop
        self.maxBacklogBytes = maxBacklogBytes
        self.counters = counters
        self.lagTimer = lagTimer
        self.logger = logger
    }

    /// Message bytes waiting now.
    var backlogBytes: Int { self.mailbox.withLockedValue { $0.bytes } }

    /// Queues `message` for `topic`'s members on this loop; any thread.
    func enqueue(_ message: PreparedMessage, for topic: TopicLoop) {
        let size = message.payloadSize
        let limit = self.maxBacklogBytes
        let queuedAt = self.lagTimer == nil ? 0 : NIODeadline.now().uptimeNanoseconds
        let scheduleDrain = self.mailbox.withLockedValue { mailbox -> Bool in
            guard mailbox.bytes + size <= limit else {
                mailbox.dropped += 1
                if !mailbox.gapped.contains(where: { $0 === topic }) { mailbox.gapped.append(topic) }
                return false
            }
            if let index = mailbox.gapped.firstIndex(where: { $0 === topic }) {
                mailbox.gapped.remove(at: index)
                mailbox.entries.append(.gap(topic))
            }
            mailbox.entries.append(.message(topic, message, queuedAt))
            mailbox.bytes += size
            defer { mailbox.isDrainScheduled = true }
            return !mailbox.isDrainScheduled
        }
        if scheduleDrain { self.eventLoop.execute { self.drain() } }
    }

    /// Queues a gap for `topic`'s members on this loop, in order with its messages; any thread.
    func enqueueGap(for topic: TopicLoop) {
        let scheduleDrain = self.mailbox.withLockedValue { mailbox -> Bool in
            mailbox.gapped.removeAll { $0 === topic }
            mailbox.entries.append(.gap(topic))
            defer { mailbox.isDrainScheduled = true }
            return !mailbox.isDrainScheduled
        }
        if scheduleDrain { self.eventLoop.execute { self.drain() } }
    }

    /// Delivers everything waiting; on the loop.
    private func drain() {
        let (entries, dropped, gapped) = self.mailbox.withLockedValue { mailbox in
            defer { mailbox = Mailbox() }
            return (mailbox.entries, mailbox.dropped, mailbox.gapped)
        }
        if dropped > 0 {
            self.counters.droppedForBacklog.wrappingAdd(dropped, ordering: .relaxed)
            self.logger.warning(
                "Event loop overloaded: dropped messages for its sockets; their members were told of a gap",
                metadata: ["switchboard.dropped": "\(dropped)", "switchboard.topics": "\(gapped.count)"])
        }
        if entries.count == 1, case .message(let topic, let message, let queuedAt) = entries[0], gapped.isEmpty {
            // Keeping up: one message, one topic.
            topic.deliver([message])
            self.recordLag(since: CollectionOfOne(queuedAt))
            return
        }
        for (topic, items) in Self.group(entries) {
            for item in items {
                switch item {
                case .messages(let batch, let queuedAt):
                    topic.deliver(batch)
                    self.recordLag(since: queuedAt)
                case .gap: topic.deliverGap()
                }
            }
        }
        for topic in gapped { topic.deliverGap() }
    }

    /// Records how long messages took from the broker's delivery to their members' sockets (written just now).
    private func recordLag(since queuedAt: some Collection<UInt64>) {
        guard let lagTimer = self.lagTimer else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        for time in queuedAt { lagTimer.recordNanoseconds(Int64(truncatingIfNeeded: now &- time)) }
    }

    private enum Item {
        /// Messages, with when each was queued.
        case messages([PreparedMessage], [UInt64])
        case gap
    }

    /// Entries by topic (in the order topics first appear), each topic's consecutive messages in one batch.
    private static func group(_ entries: [Entry]) -> [(TopicLoop, [Item])] {
        var groups: [(TopicLoop, [Item])] = []
        var index: [ObjectIdentifier: Int] = [:]
        for entry in entries {
            let topic: TopicLoop
            switch entry {
            case .message(let loop, _, _), .gap(let loop): topic = loop
            }
            let position: Int
            if let known = index[ObjectIdentifier(topic)] {
                position = known
            } else {
                position = groups.count
                index[ObjectIdentifier(topic)] = position
                groups.append((topic, []))
            }
            switch entry {
            case .message(_, let message, let queuedAt):
                if case .messages(var batch, var times) = groups[position].1.last {
                    groups[position].1.removeLast()
                    batch.append(message)
                    times.append(queuedAt)
                    groups[position].1.append(.messages(batch, times))
                } else {
                    groups[position].1.append(.messages([message], [queuedAt]))
                }
            case .gap:
                groups[position].1.append(.gap)
            }
        }
        return groups
    }
}
