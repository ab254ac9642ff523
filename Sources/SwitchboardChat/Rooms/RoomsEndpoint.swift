import FoundationEssentials
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import NIOCore
import Switchboard
import SwitchboardPubSub
import SwitchboardWebSocket

/// Limits of the rooms protocol; each refusal is an error frame, not a disconnect.
struct RoomsLimits: Sendable {
    var maxFrameBytes = 16 * 1024
    var maxTextCharacters = 4000
    var maxRoomsPerSocket = 32
    var history = 100
}

/// `GET /ws`: the rooms protocol of docs/PROTOCOL.md.
struct RoomsEndpoint: Sendable {
    let sockets: SocketEndpoints
    let hubs: ChannelHubs
    let log: any RoomLog
    let presence: any PresenceStore
    let members: MemberIDs
    let limits: RoomsLimits
    let logger: Logger

    func upgrade(_ request: Request) async throws -> Response {
        try self.sockets.checkOrigin(request)
        let configuration = WebSocketConfiguration(
            maxFrameSize: 64 * 1024,
            maxMessageSize: 64 * 1024,
            maxQueuedBytes: self.sockets.configuration.maxQueuedBytes,
            subprotocols: [ChatProtocol.name],
            allowedOrigins: self.sockets.configuration.allowedOrigins
        )
        let offered = request.headers[.secWebSocketProtocol] ?? ""
        guard offered.split(separator: ",").contains(where: { $0.trimmingHTTPWhitespace() == ChatProtocol.name }) else {
            throw HTTPError(.badRequest, "offer the subprotocol \(ChatProtocol.name) (Sec-WebSocket-Protocol)")
        }
        let endpoint = self
        return WebSocket.upgrade(request, configuration: configuration) { socket in
            let session = RoomSession(socket: socket, endpoint: endpoint)
            socket.onOpen { _ in session.welcome() }
            socket.onMessage { _, message in session.received(message) }
            socket.onClose { _, _, _ in session.closed() }
        }
    }

}

/// Member ids unique across nodes: a random node id and a counter.
final class MemberIDs: Sendable {
    private let node = String(UInt64.random(in: 1 << 40...UInt64.max >> 8), radix: 36)
    private let counter = NIOLockedValueBox(0)

    func next() -> String {
        "\(self.node)-\(self.counter.withLockedValue { $0 += 1; return $0 })"
    }
}

/// One `/ws` socket's state; used only on the socket's event loop.
final class RoomSession {
    private let socket: WebSocket
    private let endpoint: RoomsEndpoint
    private let memberID: String
    private var nick = "guest"
    /// Reused for every frame of this socket (the session is used on one loop only).
    private let decoder = JSONDecoder()
    private let encoder = JSONEncoder()
    /// This socket's rooms; a member enters its hub once the join is admitted.
    private var rooms: [String: HubMember] = [:]
    private var isClosed = false

    init(socket: WebSocket, endpoint: RoomsEndpoint) {
        self.socket = socket
        self.endpoint = endpoint
        self.memberID = endpoint.members.next()
    }

    private var presenceMember: PresenceMember { PresenceMember(id: self.memberID, nick: self.nick) }

    func welcome() {
        let limits = self.endpoint.limits
        self.send(
            WelcomeFrame(
                limits: .init(
                    maxFrameBytes: limits.maxFrameBytes, maxTextCharacters: limits.maxTextCharacters,
                    maxRooms: limits.maxRoomsPerSocket, history: limits.history)))
    }

    func received(_ message: WebSocketMessage) {
        guard message.data.readableBytes <= self.endpoint.limits.maxFrameBytes else {
            return self.send(
                ErrorFrame("too_large", "frames are limited to \(self.endpoint.limits.maxFrameBytes) bytes"))
        }
        guard message.kind == .text,
            let frame = try? self.decoder.decode(ClientFrame.self, from: Data(message.data.readableBytesView))
        else {
            return self.send(ErrorFrame("bad_json", "each frame must be one JSON object with string fields"))
        }
        let ref = frame.ref.flatMap { $0.count <= 64 ? $0 : nil }
        switch frame.type {
        case "nick": self.setNick(frame.nick, ref: ref)
        case "join": self.join(frame.room, since: frame.since, ref: ref)
        case "leave": self.leave(frame.room, ref: ref)
        case "say": self.say(frame.text, in: frame.room, ref: ref)
        default: self.send(ErrorFrame("unknown_type", "type must be nick, join, leave or say", ref: ref))
        }
    }

    func closed() {
        self.isClosed = true
        for (room, member) in self.rooms {
            if member.leave() { self.endpoint.presence.leave(self.presenceMember, room: room) }
        }
        self.rooms.removeAll()
    }

    // MARK: Requests

    private func setNick(_ nick: String?, ref: String?) {
        guard let nick, ChatNames.isValidNick(nick) else {
            return self.send(
                ErrorFrame("invalid_nick", "a nickname is 1 to 32 characters, no control characters", ref: ref))
        }
        let previous = self.presenceMember
        self.nick = nick
        self.send(SimpleFrame(type: "nick", nick: nick, ref: ref))
        // In presence, a new nickname is a leave under the old one and a join under the new one.
        let presence = self.endpoint.presence
        let current = self.presenceMember
        for room in self.rooms.keys where previous != current {
            presence.leave(previous, room: room)
            Task { try? await presence.enter(current, room: room) }
        }
    }

    private func join(_ room: String?, since: String?, ref: String?) {
        guard let room, ChatNames.isValidRoom(room) else {
            return self.send(ErrorFrame("invalid_room", "a room is 1 to 64 of A-Z a-z 0-9 - _ .", ref: ref))
        }
        guard self.rooms[room] == nil else {
            return self.send(ErrorFrame("already_joined", "this socket is in \(room) already", ref: ref))
        }
        guard self.rooms.count < self.endpoint.limits.maxRoomsPerSocket else {
            return self.send(
                ErrorFrame("too_many_rooms", "at most \(self.endpoint.limits.maxRoomsPerSocket) rooms", ref: ref))
        }
        // Held from now on: live messages wait until the history is sent, then only the ones it lacks follow.
        let member = HubMember(socket: self.socket, holding: true)
        self.rooms[room] = member
        let session = NIOLoopBound(self, eventLoop: self.socket.eventLoop)
        let endpoint = self.endpoint
        let eventLoop = self.socket.eventLoop
        Task {
            do {
                let ticket = try await endpoint.hubs.join(RoomChannel.name(of: room))
                // Added to the hub (on the loop) before the history is read: nothing published after the read is
                // missed, and anything in both is sent once.
                let me = try await eventLoop.submit { session.value.admitted(room, ticket: ticket) }.get()
                let (messages, gap) = try await endpoint.log.history(of: room, since: since)
                try await endpoint.presence.enter(me, room: room)
                let members = try await endpoint.presence.members(of: room)
                eventLoop.execute {
                    session.value.joined(
                        room, messages: messages, gap: gap, since: since, members: members, you: me, ref: ref)
                }
            } catch {
                eventLoop.execute { session.value.joinFailed(room, error: error, ref: ref) }
            }
        }
    }

    private func admitted(_ room: String, ticket: HubTicket) -> PresenceMember {
        guard !self.isClosed, let member = self.rooms[room] else {
            ticket.release()
            return self.presenceMember
        }
        member.enter(ticket)
        return self.presenceMember
    }

    private func joined(
        _ room: String,
        messages: [RoomMessage],
        gap: Bool,
        since: String?,
        members: [PresenceMember],
        you: PresenceMember,
        ref: String?
    ) {
        guard !self.isClosed, let member = self.rooms[room] else {
            // Closed or left while joining: undo the presence entry made meanwhile.
            self.endpoint.presence.leave(you, room: room)
            return
        }
        self.send(JoinedFrame(room: room, messages: messages, gap: gap, members: members, you: you, ref: ref))
        if member.overflowed {
            // More arrived while joining than we hold for one socket: let the client catch up from its last id.
            self.socket.close(code: .tryAgainLater, reason: "too many messages while joining; rejoin with since")
            return
        }
        // The newest message the client has now: live messages up to it (held, or still in flight) are skipped.
        guard let newest = messages.last?.id ?? (gap ? nil : since) else {
            for payload in member.release() {
                try? self.socket.send(WebSocketMessage(kind: .text, data: payload))
            }
            return
        }
        let decoder = self.decoder
        let isNew: (ByteBuffer) -> HubMember.FilterDecision = { payload in
            guard let message = try? decoder.decode(RoomMessage.self, from: Data(payload.readableBytesView)),
                message.type == "message"
            else { return .deliver }  // presence events are not in the history
            return RoomMessageID.isAfter(message.id, newest) ? .deliverAndStop : .drop
        }
        var caughtUp = false
        for payload in member.release() {
            if !caughtUp {
                switch isNew(payload) {
                case .drop: continue
                case .deliver: break
                case .deliverAndStop: caughtUp = true
                }
            }
            try? self.socket.send(WebSocketMessage(kind: .text, data: payload))
        }
        if !caughtUp { member.filter = isNew }
    }

    private func joinFailed(_ room: String, error: any Error, ref: String?) {
        // Undo whatever part of the join happened: hub membership, reference, presence entry.
        if let member = self.rooms.removeValue(forKey: room), member.leave() {
            self.endpoint.presence.leave(self.presenceMember, room: room)
        }
        self.endpoint.logger.warning("Joining a room failed", metadata: ["room": "\(room)", "error": "\(error)"])
        self.send(ErrorFrame("unavailable", "the message broker is unavailable; try again", ref: ref))
    }

    private func leave(_ room: String?, ref: String?) {
        guard let room, let member = self.rooms.removeValue(forKey: room) else {
            return self.send(ErrorFrame("not_joined", "this socket is not in that room", ref: ref))
        }
        if member.leave() { self.endpoint.presence.leave(self.presenceMember, room: room) }
        self.send(SimpleFrame(type: "left", room: room, ref: ref))
    }

    private func say(_ text: String?, in room: String?, ref: String?) {
        guard let room, self.rooms[room] != nil else {
            return self.send(ErrorFrame("not_joined", "join the room before saying something in it", ref: ref))
        }
        guard let text, !text.isEmpty, text.count <= self.endpoint.limits.maxTextCharacters else {
            return self.send(
                ErrorFrame(
                    "invalid_text", "text is 1 to \(self.endpoint.limits.maxTextCharacters) characters", ref: ref))
        }
        let logger = self.endpoint.logger
        let promise = self.socket.eventLoop.makePromise(of: Void.self)
        let session = NIOLoopBound(self, eventLoop: self.socket.eventLoop)
        promise.futureResult.whenFailure { error in
            logger.debug("Posting a room message failed", metadata: ["error": "\(error)"])
            session.value.send(ErrorFrame("unavailable", "the message could not be stored; try again", ref: ref))
        }
        self.endpoint.log.post(room: room, nick: self.nick, text: text, promise: promise)
    }

    private func send(_ frame: some Encodable) {
        guard let data = try? self.encoder.encode(frame) else { return }
        try? self.socket.send(WebSocketMessage(kind: .text, data: ByteBuffer(bytes: data)))
    }
}
