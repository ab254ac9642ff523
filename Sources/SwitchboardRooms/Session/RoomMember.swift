import FoundationEssentials
package import NIOCore
package import SwitchboardTopics
package import SwitchboardWebSocket

/// One socket's membership in one room: a sink of the room's topic that writes to the socket, after the
/// history→live hand-over (``RoomHandOver``).
package final class RoomMember: TopicSink {
    let socket: WebSocket
    let room: String
    private(set) var handOver: RoomHandOver
    /// The topic membership, once attached.
    var membership: TopicMembership?
    /// Called when messages of the room may have been lost for this socket.
    private let onGap: (RoomMember) -> Void

    init(socket: WebSocket, room: String, onGap: @escaping (RoomMember) -> Void) {
        self.socket = socket
        self.room = room
        self.onGap = onGap
        self.handOver = RoomHandOver(classify: Self.classify)
    }

    package var eventLoop: any EventLoop { self.socket.eventLoop }
    package var frameEncoding: FrameEncoding { self.socket.frameEncoding }

    package func receive(_ frames: PreparedFrames, from membership: TopicMembership) {
        guard let frames = self.handOver.received(frames) else { return }
        try? self.socket.send(frames)
    }

    package func receiveGap(from membership: TopicMembership) {
        if self.handOver.gapped() == .tellClient { self.onGap(self) }
    }

    /// Holds live messages for a re-sync the client asked for.
    func restartHandOver() {
        self.handOver.restart()
    }

    /// What became of the hand-over once the history went out.
    package enum HistoryOutcome: Sendable {
        case delivered
        /// More arrived while joining than were held: the socket must reconnect and join with `since`.
        case overflowed
        /// Messages were lost while the history was read: the client must re-sync again.
        case gapped
    }

    /// The history went out; sends what the hand-over held that the history lacked.
    func historySent(newest: String?) -> HistoryOutcome {
        switch self.handOver.historySent(newest: newest) {
        case .overflowed:
            return .overflowed
        case .gapped:
            return .gapped
        case .send(let held):
            if !held.isEmpty { try? self.socket.send(held) }
            return .delivered
        }
    }

    /// Leaves the room's topic; later calls do nothing.
    func leave() {
        self.membership?.cancel()
        self.membership = nil
    }

    private struct Probe: Decodable {
        struct Member: Decodable {
            var id: String?
        }

        var type: String?
        var id: String?
        var member: Member?
    }

    /// What a live frame of the room is. Only used while a hand-over holds or filters, so decoding is not on the
    /// steady path.
    private static func classify(_ message: PreparedMessage) -> RoomHandOver.Kind {
        guard let probe = try? JSONDecoder().decode(Probe.self, from: Data(message.message.data.readableBytesView))
        else { return .other }
        switch probe.type {
        case "message": return probe.id.map { .message(id: $0) } ?? .other
        case "presence": return probe.member?.id.map { .presence(member: $0) } ?? .other
        default: return .other
        }
    }
}
