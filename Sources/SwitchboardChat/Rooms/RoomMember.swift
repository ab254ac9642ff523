import FoundationEssentials
import NIOCore
import SwitchboardTopics
import SwitchboardWebSocket

/// One socket's membership in one room: a sink of the room's topic that writes to the socket, after the
/// history→live hand-over (``RoomHandOver``).
final class RoomMember: TopicSink {
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
        self.handOver = RoomHandOver(messageID: Self.messageID)
    }

    var eventLoop: any EventLoop { self.socket.eventLoop }
    var frameEncoding: FrameEncoding { self.socket.frameEncoding }

    func receive(_ frames: PreparedFrames, from membership: TopicMembership) {
        guard let frames = self.handOver.received(frames) else { return }
        try? self.socket.send(frames)
    }

    func receiveGap(from membership: TopicMembership) {
        self.onGap(self)
    }

    /// The history went out; sends what the hand-over held that the history lacked.
    ///
    /// - Returns: `false` when more arrived while joining than were held (the socket must rejoin with `since`).
    func historySent(newest: String?) -> Bool {
        switch self.handOver.historySent(newest: newest) {
        case .overflowed:
            return false
        case .send(let held):
            if !held.isEmpty { try? self.socket.send(held) }
            return true
        }
    }

    /// Leaves the room's topic; later calls do nothing.
    func leave() {
        self.membership?.cancel()
        self.membership = nil
    }

    private struct IDProbe: Decodable {
        var type: String?
        var id: String?
    }

    /// The id of a room message; `nil` for other frames of the room (presence events). Only used while a join's
    /// hand-over filters, so decoding is not on the steady path.
    private static func messageID(_ message: PreparedMessage) -> String? {
        guard
            let probe = try? JSONDecoder().decode(IDProbe.self, from: Data(message.message.data.readableBytesView)),
            probe.type == "message"
        else { return nil }
        return probe.id
    }
}
