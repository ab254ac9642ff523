import NIOConcurrencyHelpers
import NIOCore
import SwitchboardPubSub
import Synchronization

/// One topic in this process: its broker subscription and the event loops with members.
///
/// Lives while it has references (reservations and memberships, counted by ``Topics``); the last one to go
/// cancels the subscription. It keeps its engine alive: a membership may end after the app let go of the engine.
final class TopicState: Sendable {
    private struct State {
        /// The loops with members, in the order they joined. Replaced rather than mutated in place while
        /// deliveries hold a snapshot (arrays are copied on write).
        var loops: [TopicLoop] = []
        var subscription: Subscription?
        var isSubscribing = false
        /// Reservations waiting for the subscription another one is making.
        var waiters: [CheckedContinuation<Void, any Error>] = []
        /// Why the last attempt to subscribe failed, for the waiters that had not registered yet.
        var failure: (any Error)?
        var isClosed = false
    }

    let name: String
    let engine: Topics
    private let state = NIOLockedValueBox(State())
    private let members = Atomic<Int>(0)

    init(name: String, engine: Topics) {
        self.name = name
        self.engine = engine
    }

    var memberCount: Int { self.members.load(ordering: .relaxed) }

    func memberAdded() {
        self.members.wrappingAdd(1, ordering: .relaxed)
        self.engine.counters.members.wrappingAdd(1, ordering: .relaxed)
    }

    func memberRemoved() {
        self.members.wrappingSubtract(1, ordering: .relaxed)
        self.engine.counters.members.wrappingSubtract(1, ordering: .relaxed)
    }

    // MARK: Subscription

    /// Subscribes to the broker unless already subscribed; returns once the subscription is established.
    func subscribe() async throws {
        enum Step {
            case done
            case wait
            case subscribe
        }
        let step = self.state.withLockedValue { state -> Step in
            if state.subscription != nil { return .done }
            if state.isSubscribing { return .wait }
            state.isSubscribing = true
            state.failure = nil
            return .subscribe
        }
        switch step {
        case .done:
            return
        case .wait:
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let outcome = self.state.withLockedValue { state -> Result<Void, any Error>? in
                    if state.subscription != nil { return .success(()) }
                    if state.isSubscribing {
                        state.waiters.append(continuation)
                        return nil
                    }
                    return .failure(state.failure ?? CancellationError())
                }
                if let outcome { continuation.resume(with: outcome) }
            }
        case .subscribe:
            do {
                // Weak: the broker holds the handler until the subscription is cancelled, which this topic does.
                let subscription = try await self.engine.broker.subscribeDirect(to: self.name) { [weak self] event in
                    self?.deliver(event)
                }
                let (keep, waiters) = self.state.withLockedValue { state in
                    state.isSubscribing = false
                    defer { state.waiters = [] }
                    guard !state.isClosed else { return (false, state.waiters) }
                    state.subscription = subscription
                    return (true, state.waiters)
                }
                if !keep { subscription.cancel() }
                for waiter in waiters { waiter.resume() }
            } catch {
                let waiters = self.state.withLockedValue { state in
                    state.isSubscribing = false
                    state.failure = error
                    defer { state.waiters = [] }
                    return state.waiters
                }
                for waiter in waiters { waiter.resume(throwing: error) }
                throw error
            }
        }
    }

    /// Ends the broker subscription; the topic is not used again. Its loops go too: they refer back to it, and
    /// the topic, its loops and the engine must be freed once nothing uses them.
    func close() {
        let subscription = self.state.withLockedValue { state -> Subscription? in
            state.isClosed = true
            state.loops = []
            defer { state.subscription = nil }
            return state.subscription
        }
        subscription?.cancel()
    }

    // MARK: Loops

    /// The members of this topic on `eventLoop`, made on first use.
    func loop(for eventLoop: any EventLoop) -> TopicLoop {
        let key = ObjectIdentifier(eventLoop)
        return self.state.withLockedValue { state in
            if let loop = state.loops.first(where: { ObjectIdentifier($0.fanOut.eventLoop) == key }) { return loop }
            let loop = TopicLoop(topic: self, fanOut: self.engine.fanOut(for: eventLoop))
            state.loops.append(loop)
            return loop
        }
    }

    // MARK: Delivery (on the broker's thread)

    /// Called by the broker, on whatever thread delivers: frames the message once and hands it to every loop with
    /// members. One lock for the loop list, then one per loop (its mailbox).
    private func deliver(_ event: BrokerEvent) {
        let loops = self.state.withLockedValue { $0.loops }
        switch event {
        case .message(let message):
            guard !loops.isEmpty, let prepared = self.engine.prepare(message.payload, topic: self.name) else { return }
            for loop in loops { loop.fanOut.enqueue(prepared, for: loop) }
        case .gap:
            self.engine.counters.gaps.wrappingAdd(1, ordering: .relaxed)
            for loop in loops { loop.fanOut.enqueueGap(for: loop) }
        }
    }
}
