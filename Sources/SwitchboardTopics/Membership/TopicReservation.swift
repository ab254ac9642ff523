import NIOCore
public import SwitchboardWebSocket
import Synchronization

/// A place in a topic, held from before a member exists (say, before a WebSocket handshake) until one is
/// attached.
///
/// Get one from ``Topics/reserve(_:)``; it keeps the topic's broker subscription alive. ``attach(_:onGap:)``
/// turns it into a ``TopicMembership``; if it is never attached, ``release()`` (or deallocation) gives the place
/// back. A reservation attaches one member.
public final class TopicReservation: Sendable {
    let topic: TopicState
    /// Whether this reservation still holds its reference to the topic.
    private let isHeld = Atomic<Bool>(true)

    init(topic: TopicState) {
        self.topic = topic
    }

    /// The topic's name.
    public var topicName: String { self.topic.name }

    /// Attaches `socket`: from now until it closes (or the membership is cancelled), it receives every message of
    /// the topic.
    ///
    /// - Parameters:
    ///   - socket: The socket.
    ///   - onGap: What the socket is told when messages may have been lost.
    /// - Returns: The membership; already ended if the socket had closed.
    /// - Important: Call on the socket's event loop (a WebSocket's set-up closure runs there), once.
    @discardableResult
    public func attach(_ socket: WebSocket, onGap: TopicGapPolicy = .ignore) -> TopicMembership {
        let membership = self.makeMembership(on: socket.eventLoop, .socket(socket, onGap))
        if socket.addCloseObserver(membership) {
            membership.start(encoding: socket.frameEncoding)
        } else {
            membership.cancel()
        }
        return membership
    }

    /// Attaches `sink`: from now until the membership is cancelled, it receives every message of the topic.
    ///
    /// - Returns: The membership. Cancel it when the sink goes away; nothing else ends it.
    /// - Important: Call on the sink's event loop, once.
    @discardableResult
    public func attach(_ sink: some TopicSink) -> TopicMembership {
        let membership = self.makeMembership(on: sink.eventLoop, .sink(sink))
        membership.start(encoding: sink.frameEncoding)
        return membership
    }

    /// Gives the place back without attaching anything; later calls do nothing.
    public func release() {
        guard self.isHeld.exchange(false, ordering: .acquiringAndReleasing) else { return }
        self.topic.engine.release(self.topic)
    }

    private func makeMembership(on eventLoop: any EventLoop, _ recipient: TopicMembership.Recipient)
        -> TopicMembership
    {
        eventLoop.preconditionInEventLoop()
        precondition(
            self.isHeld.exchange(false, ordering: .acquiringAndReleasing),
            "a TopicReservation attaches one member, and not after release()")
        // The reference passes to the membership, which gives it back when it ends.
        return TopicMembership(topicLoop: self.topic.loop(for: eventLoop), recipient: recipient)
    }

    deinit {
        // A handshake that never completed (refused, or the connection dropped) still gives its place back.
        self.release()
    }
}
