public import NIOCore
import SwitchboardWebSocket
import Synchronization

/// A member of a topic: a socket or a ``TopicSink`` that receives every message of the topic.
///
/// A socket's membership ends when the socket closes; any membership ends with ``cancel()``, from any thread.
public final class TopicMembership: @unchecked Sendable {
    // @unchecked Sendable is sound: `recipient` and `topicLoop` are immutable; `isAttached` and the sink inside
    // `recipient` are touched only on `eventLoop` (the engine calls members there, and `start`/`detach` run there);
    // the only state read from other threads is the atomic `isCancelled`.
    enum Recipient {
        case socket(WebSocket, TopicGapPolicy)
        case sink(any TopicSink)
    }

    let topicLoop: TopicLoop
    let recipient: Recipient
    private let isCancelled = Atomic<Bool>(false)
    /// In the topic's member list; only on the loop.
    private var isAttached = false

    init(topicLoop: TopicLoop, recipient: Recipient) {
        self.topicLoop = topicLoop
        self.recipient = recipient
    }

    /// The topic's name.
    public var topic: String { self.topicLoop.topic.name }

    /// The event loop the member lives on.
    public var eventLoop: any EventLoop { self.topicLoop.fanOut.eventLoop }

    /// Whether the membership is still on (not cancelled, its socket not closed).
    public var isActive: Bool { !self.isCancelled.load(ordering: .relaxed) }

    /// Ends the membership: the member receives nothing more of the topic. Any thread; later calls do nothing.
    public func cancel() {
        guard !self.isCancelled.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if self.eventLoop.inEventLoop {
            self.detach()
        } else {
            self.eventLoop.execute { self.detach() }
        }
    }

    /// Joins the topic's member list (on the loop, right after the reservation handed over its reference) and
    /// receives what the reservation held, which came before anything the list will be delivered.
    func start(encoding: FrameEncoding, replaying held: [HeldMessages.Item] = []) {
        guard !self.isCancelled.load(ordering: .relaxed) else { return }
        self.isAttached = true
        self.topicLoop.add(self, encoding: encoding)
        for item in held {
            switch item {
            case .messages(let batch): self.receive(PreparedFrames(batch, encoding: encoding))
            case .gap: self.receiveGap()
            }
        }
    }

    /// Leaves the member list and gives the topic reference back; on the loop, once.
    private func detach() {
        if self.isAttached {
            self.isAttached = false
            self.topicLoop.remove(self)
        }
        if case .socket(let socket, _) = self.recipient { socket.removeCloseObserver(self) }
        self.topicLoop.topic.engine.release(self.topicLoop.topic)
    }

    // MARK: Delivery (on the loop)

    func receive(_ frames: PreparedFrames) {
        guard self.isAttached else { return }
        switch self.recipient {
        case .socket(let socket, _): try? socket.send(frames)
        case .sink(let sink): sink.receive(frames, from: self)
        }
    }

    func receiveGap() {
        guard self.isAttached else { return }
        switch self.recipient {
        case .socket(let socket, let policy):
            switch policy.kind {
            case .ignore: break
            case .close(let code, let reason): socket.close(code: code, reason: reason)
            case .send(let message): try? socket.send(message)
            }
        case .sink(let sink):
            sink.receiveGap(from: self)
        }
    }
}

extension TopicMembership: WebSocketCloseObserver {
    package func webSocketDidClose() {
        self.cancel()
    }
}
