import NIOCore
public import SwitchboardWebSocket
import Synchronization

/// A place in a topic, held from before a member exists (say, before a WebSocket handshake) until one is
/// attached.
///
/// Get one from ``Topics/reserve(_:on:)``; it keeps the topic's broker subscription alive. ``attach(_:onGap:)``
/// turns it into a ``TopicMembership``; if it is never attached, ``release()`` (or deallocation) gives the place
/// back. A reservation attaches one member. A reservation made for an event loop holds what the topic delivers
/// there until the member attaches (up to ``Topics/Configuration/maxHeldBytes``, past which the member gets a gap
/// instead), so the member misses nothing published after the reservation was made.
public final class TopicReservation: Sendable {
    let topic: TopicState
    /// Whether this reservation still holds its reference to the topic.
    private let isHeld = Atomic<Bool>(true)
    /// What the topic delivered on the reservation's loop meanwhile; `nil` for a reservation made for no loop.
    private let held: Held?

    struct Held: Sendable {
        let loop: TopicLoop
        let messages: NIOLoopBound<HeldMessages>
    }

    init(topic: TopicState, held: Held?) {
        self.topic = topic
        self.held = held
    }

    /// The topic's name.
    public var topicName: String { self.topic.name }

    /// Attaches `socket`: from now until it closes (or the membership is cancelled), it receives every message of
    /// the topic, starting with what was held for it since the reservation.
    ///
    /// - Parameters:
    ///   - socket: The socket.
    ///   - onGap: What the socket is told when messages may have been lost.
    /// - Returns: The membership; already ended if the socket had closed.
    /// - Important: Call on the socket's event loop (a WebSocket's set-up closure runs there), once; for a
    ///   reservation made for an event loop, that loop.
    @discardableResult
    public func attach(_ socket: WebSocket, onGap: TopicGapPolicy = .ignore) -> TopicMembership {
        let membership = self.makeMembership(on: socket.eventLoop, .socket(socket, onGap))
        let held = self.takeHeld()
        if socket.addCloseObserver(membership) {
            membership.start(encoding: socket.frameEncoding, replaying: held)
        } else {
            membership.cancel()
        }
        return membership
    }

    /// Attaches `sink`: from now until the membership is cancelled, it receives every message of the topic,
    /// starting with what was held for it since the reservation.
    ///
    /// - Returns: The membership. Cancel it when the sink goes away; nothing else ends it.
    /// - Important: Call on the sink's event loop, once; for a reservation made for an event loop, that loop.
    @discardableResult
    public func attach(_ sink: some TopicSink) -> TopicMembership {
        let membership = self.makeMembership(on: sink.eventLoop, .sink(sink))
        membership.start(encoding: sink.frameEncoding, replaying: self.takeHeld())
        return membership
    }

    /// Gives the place back without attaching anything; later calls do nothing.
    public func release() {
        guard self.isHeld.exchange(false, ordering: .acquiringAndReleasing) else { return }
        if let held = self.held {
            let eventLoop = held.loop.fanOut.eventLoop
            if eventLoop.inEventLoop {
                held.loop.removeHeld(held.messages.value)
            } else {
                eventLoop.execute { held.loop.removeHeld(held.messages.value) }
            }
        }
        self.topic.engine.release(self.topic)
    }

    private func makeMembership(on eventLoop: any EventLoop, _ recipient: TopicMembership.Recipient)
        -> TopicMembership
    {
        eventLoop.preconditionInEventLoop()
        precondition(
            self.isHeld.exchange(false, ordering: .acquiringAndReleasing),
            "a TopicReservation attaches one member, and not after release()")
        precondition(
            self.held.map { $0.loop.fanOut.eventLoop === eventLoop } ?? true,
            "a TopicReservation made for an event loop attaches a member on that loop")
        // The reference passes to the membership, which gives it back when it ends.
        return TopicMembership(topicLoop: self.topic.loop(for: eventLoop), recipient: recipient)
    }

    /// Stops holding and returns what was held (on the loop, while attaching).
    private func takeHeld() -> [HeldMessages.Item] {
        guard let held = self.held else { return [] }
        let messages = held.messages.value
        held.loop.removeHeld(messages)
        return messages.items
    }

    deinit {
        // A handshake that never completed (refused, or the connection dropped) still gives its place back.
        self.release()
    }
}
