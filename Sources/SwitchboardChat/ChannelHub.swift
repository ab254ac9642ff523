import Logging
import NIOConcurrencyHelpers
import NIOCore
import SwitchboardPubSub
import SwitchboardWebSocket
import Synchronization

/// The sockets of one broker channel in this process, and the one broker subscription that feeds them.
///
/// The hot path of ARCHITECTURE.md: a message from the broker is framed once (``PreparedMessage``) and put in the
/// mailbox of each event loop with members; one task per loop drains the mailbox, writing the same buffers to its
/// sockets. No task, copy or lock per recipient; one lock per message and loop. When a loop falls behind (messages
/// arrive faster than it writes), the next drain finds several messages and sends them to each socket with one
/// flush, so the backlog costs one system call per socket instead of one per message, and the loop catches up
/// instead of falling further behind. Slow sockets are the WebSocket layer's business (their outbound queue is
/// bounded; past it they are closed), so a slow reader never holds up the others.
final class ChannelHub: Sendable {
    /// The members on one event loop; touched only on that loop.
    private final class LoopMembers {
        var members: [ObjectIdentifier: HubMember] = [:]
    }

    /// Messages for one loop's members, waiting for that loop's next drain.
    private struct Mailbox {
        var messages: [PreparedMessage] = []
        var bytes = 0
        var isDrainScheduled = false
        /// Messages refused since the last drain because the mailbox was full.
        var dropped = 0
    }

    private struct LoopEntry {
        let eventLoop: any EventLoop
        let members: NIOLoopBoundBox<LoopMembers>
        let mailbox: NIOLockedValueBox<Mailbox>
    }

    private struct State {
        var loops: [ObjectIdentifier: LoopEntry] = [:]
        var subscription: Subscription?
        var subscribing: EventLoopFuture<Void>?
        var isClosed = false
    }

    let channel: String
    private let broker: any Broker
    private let eventLoop: any EventLoop
    private let logger: Logger
    /// The most payload bytes waiting for one loop: a loop that cannot keep up at all (overloaded for seconds)
    /// drops new messages, with a warning, rather than growing memory without bound.
    private let maxBacklogBytes: Int
    private let state = NIOLockedValueBox(State())

    init(channel: String, broker: any Broker, eventLoop: any EventLoop, maxBacklogBytes: Int, logger: Logger) {
        self.channel = channel
        self.broker = broker
        self.eventLoop = eventLoop
        self.maxBacklogBytes = maxBacklogBytes
        self.logger = logger
    }

    /// Subscribes to the broker unless already subscribed; returns once the subscription is established, so a
    /// socket admitted after this misses nothing published later (its 101 goes out after this returns).
    func subscribe() async throws {
        let (future, promise) = self.state.withLockedValue {
            state -> (EventLoopFuture<Void>?, EventLoopPromise<Void>?) in
            if state.subscription != nil { return (nil, nil) }
            if let subscribing = state.subscribing { return (subscribing, nil) }
            let promise = self.eventLoop.makePromise(of: Void.self)
            state.subscribing = promise.futureResult
            return (promise.futureResult, promise)
        }
        if let promise {
            do {
                let subscription = try await self.broker.subscribe(to: self.channel, on: self.eventLoop) {
                    [weak self] event in self?.deliver(event)
                }
                let keep = self.state.withLockedValue { state -> Bool in
                    state.subscribing = nil
                    guard !state.isClosed else { return false }
                    state.subscription = subscription
                    return true
                }
                if !keep { subscription.cancel() }
                promise.succeed()
            } catch {
                self.state.withLockedValue { $0.subscribing = nil }
                promise.fail(error)
            }
        }
        try await future?.get()
    }

    /// Adds `member`; call on its socket's event loop.
    func add(_ member: HubMember) {
        self.entry(for: member.socket.eventLoop).members.value.members[ObjectIdentifier(member)] = member
    }

    /// Removes `member`; call on its socket's event loop.
    func remove(_ member: HubMember) {
        self.entry(for: member.socket.eventLoop).members.value.members[ObjectIdentifier(member)] = nil
    }

    /// Ends the broker subscription; the hub is not used again.
    func close() {
        let subscription = self.state.withLockedValue { state -> Subscription? in
            state.isClosed = true
            defer { state.subscription = nil }
            return state.subscription
        }
        subscription?.cancel()
    }

    private func deliver(_ event: BrokerEvent) {
        guard case .message(let message) = event else { return }
        guard let text = WebSocketMessage.text(validating: message.payload) else {
            // Anyone with access to Redis can publish; text frames must be UTF-8, so such a message is dropped.
            self.logger.warning("Dropped a message that is not UTF-8", metadata: ["channel": "\(self.channel)"])
            return
        }
        let prepared = PreparedMessage(text)
        let size = message.payload.readableBytes
        let entries = self.state.withLockedValue { Array($0.loops.values) }
        for entry in entries {
            let scheduleDrain = entry.mailbox.withLockedValue { mailbox -> Bool in
                guard mailbox.bytes + size <= self.maxBacklogBytes else {
                    mailbox.dropped += 1
                    return false
                }
                mailbox.messages.append(prepared)
                mailbox.bytes += size
                defer { mailbox.isDrainScheduled = true }
                return !mailbox.isDrainScheduled
            }
            if scheduleDrain {
                entry.eventLoop.execute { self.drain(entry) }
            }
        }
    }

    /// Sends what waits in `entry`'s mailbox to its members; runs on `entry`'s loop.
    private func drain(_ entry: LoopEntry) {
        let (batch, dropped) = entry.mailbox.withLockedValue { mailbox in
            defer { mailbox = Mailbox() }
            return (mailbox.messages, mailbox.dropped)
        }
        if dropped > 0 {
            self.logger.warning(
                "Event loop overloaded: dropped messages for its sockets",
                metadata: ["channel": "\(self.channel)", "switchboard.dropped": "\(dropped)"])
        }
        for member in entry.members.value.members.values {
            if member.pending == nil && member.filter == nil {
                try? member.socket.send(batch)
            } else {
                for prepared in batch {
                    if member.pending != nil {
                        member.hold(prepared.message.data)
                    } else if member.admits(prepared.message.data) {
                        try? member.socket.send(prepared)
                    }
                }
            }
        }
    }

    private func entry(for eventLoop: any EventLoop) -> LoopEntry {
        let key = ObjectIdentifier(eventLoop)
        return self.state.withLockedValue { state in
            if let entry = state.loops[key] { return entry }
            let entry = LoopEntry(
                eventLoop: eventLoop,
                members: .makeBoxSendingValue(LoopMembers(), eventLoop: eventLoop),
                mailbox: NIOLockedValueBox(Mailbox())
            )
            state.loops[key] = entry
            return entry
        }
    }
}

/// A socket's membership in a hub. While `pending` is set (a client joining with catch-up, before its history is
/// sent), live messages are held there instead of sent; only touched on the socket's event loop.
final class HubMember {
    let socket: WebSocket
    private(set) var pending: [ByteBuffer]?
    /// Set when more messages arrived while holding than `maxPending`.
    private(set) var overflowed = false
    private let maxPending: Int

    /// The hub reference held while in the hub (between ``enter(_:)`` and ``leave()``).
    private var ticket: HubTicket?

    init(socket: WebSocket, holding: Bool = false, maxPending: Int = 4096) {
        self.socket = socket
        self.pending = holding ? [] : nil
        self.maxPending = maxPending
    }

    /// Joins `ticket`'s hub, keeping the ticket until ``leave()``; call on the socket's event loop.
    func enter(_ ticket: HubTicket) {
        self.ticket = ticket
        ticket.hub.add(self)
    }

    /// Leaves the hub and releases the ticket; call on the socket's event loop.
    ///
    /// - Returns: Whether the member was in a hub.
    @discardableResult
    func leave() -> Bool {
        guard let ticket = self.ticket else { return false }
        self.ticket = nil
        ticket.hub.remove(self)
        ticket.release()
        return true
    }

    func hold(_ payload: ByteBuffer) {
        guard self.pending != nil else { return }
        if self.pending!.count < self.maxPending {
            self.pending!.append(payload)
        } else {
            self.overflowed = true
        }
    }

    /// What a filter says of a live message.
    enum FilterDecision {
        /// Already sent to this socket (it was in the history sent on join): skip it.
        case drop
        /// Send it; keep filtering (it is not a message the filter orders, a presence event say).
        case deliver
        /// Send it and stop filtering: the first new message; later ones are newer still.
        case deliverAndStop
    }

    /// Decides whether a live message is new to this socket, until it first says ``FilterDecision/deliverAndStop``
    /// (messages of a channel arrive in order, so once one is new, all later ones are).
    var filter: ((ByteBuffer) -> FilterDecision)?

    func admits(_ payload: ByteBuffer) -> Bool {
        guard let filter = self.filter else { return true }
        switch filter(payload) {
        case .drop: return false
        case .deliver: return true
        case .deliverAndStop:
            self.filter = nil
            return true
        }
    }

    /// Stops holding; returns what was held.
    func release() -> [ByteBuffer] {
        defer { self.pending = nil }
        return self.pending ?? []
    }
}

/// The hubs of this process, by channel; a hub lives while it has members (or members about to join).
final class ChannelHubs: Sendable {
    private struct Slot {
        var hub: ChannelHub
        var references: Int
    }

    private let broker: any Broker
    private let eventLoopGroup: any EventLoopGroup
    private let maxBacklogBytes: Int
    private let logger: Logger
    private let hubs = NIOLockedValueBox<[String: Slot]>([:])

    init(broker: any Broker, eventLoopGroup: any EventLoopGroup, maxBacklogBytes: Int, logger: Logger) {
        self.broker = broker
        self.eventLoopGroup = eventLoopGroup
        self.maxBacklogBytes = maxBacklogBytes
        self.logger = logger
    }

    /// Takes a reference to `channel`'s hub and makes sure it is subscribed. The membership ends when the
    /// returned ticket is released (or deallocated).
    func join(_ channel: String) async throws -> HubTicket {
        let hub = self.hubs.withLockedValue { hubs -> ChannelHub in
            var slot =
                hubs[channel]
                ?? Slot(
                    hub: ChannelHub(
                        channel: channel, broker: self.broker, eventLoop: self.eventLoopGroup.next(),
                        maxBacklogBytes: self.maxBacklogBytes, logger: self.logger),
                    references: 0
                )
            slot.references += 1
            hubs[channel] = slot
            return slot.hub
        }
        let ticket = HubTicket(hub: hub, hubs: self)
        try await hub.subscribe()
        return ticket
    }

    /// The channels with a hub.
    var channels: [String] { self.hubs.withLockedValue { Array($0.keys) } }

    fileprivate func leave(_ hub: ChannelHub) {
        let closing = self.hubs.withLockedValue { hubs -> Bool in
            guard var slot = hubs[hub.channel], slot.hub === hub else { return false }
            slot.references -= 1
            hubs[hub.channel] = slot.references > 0 ? slot : nil
            return slot.references == 0
        }
        if closing { hub.close() }
    }
}

/// A reference to a hub, held by a socket from before its handshake until it closes.
///
/// One small object per socket (no lock, no closure): idle sockets are what a chat server has most of.
final class HubTicket: Sendable {
    let hub: ChannelHub
    private let hubs: ChannelHubs
    private let isReleased = Atomic<Bool>(false)

    fileprivate init(hub: ChannelHub, hubs: ChannelHubs) {
        self.hub = hub
        self.hubs = hubs
    }

    /// Ends the membership; later calls do nothing.
    func release() {
        guard !self.isReleased.exchange(true, ordering: .acquiringAndReleasing) else { return }
        self.hubs.leave(self.hub)
    }

    deinit {
        // A handshake that never completed (refused, or the connection dropped) still gives its reference back.
        self.release()
    }
}
