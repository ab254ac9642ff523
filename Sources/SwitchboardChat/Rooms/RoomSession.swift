import FoundationEssentials
import Logging
import NIOCore
import SwitchboardAuth
import SwitchboardLocks
import SwitchboardTopics
import SwitchboardWebSocket

/// One `/ws` socket's state; used only on the socket's event loop.
///
/// Presence is changed only here, on the loop, and the store applies changes in call order: entering a room,
/// changing the nickname and closing, however close together, leave the store exactly as the socket left it.
final class RoomSession {
    let socket: WebSocket
    let endpoint: RoomsEndpoint
    private let memberID: String
    var nick = "guest"
    /// Who the socket is, once a token proved it (`auth`).
    var identity: Identity?
    /// A token is being verified.
    var isVerifying = false
    /// Requests that came while the first token was being verified: they run once it is, as the user it proves.
    var heldWhileVerifying: [WebSocketMessage] = []
    /// This socket's rate limits.
    var rate: SocketRateLimits
    /// The user this socket is counted for in ``RoomsEndpoint/users``.
    var countedUser: String?
    /// Closes the socket if it must authenticate and has not.
    var authTimer: Scheduled<Void>?
    /// Asks for a fresh token before the current one expires, then closes the socket when it has.
    var refreshTimer: Scheduled<Void>?
    /// Reused for every frame of this socket (the session is used on one loop only).
    private let decoder = JSONDecoder()
    private let encoder = JSONEncoder()
    /// This socket's rooms, from the `join` request on (members attach to the room's topic once admitted).
    var rooms: [String: RoomMember] = [:]
    /// The rooms whose presence has this socket's entry (entered, not yet left).
    var present: Set<String> = []
    var isClosed = false
    /// The observer was told this socket opened (and will be told it closed).
    var reportedOpen = false
    /// The last message waiting for the say hook: the next one is applied after it.
    var lastSay: EventLoopFuture<Void>?

    init(socket: WebSocket, endpoint: RoomsEndpoint) {
        self.socket = socket
        self.endpoint = endpoint
        self.memberID = endpoint.members.next()
        self.rate = SocketRateLimits(endpoint.sockets.configuration.rateLimits, now: Self.now())
    }

    /// This socket as the backend's hooks see it.
    var hookMember: ChatHooks.Member {
        ChatHooks.Member(socket: self.memberID, user: self.identity?.userID, nick: self.nick)
    }

    var presenceMember: PresenceMember {
        PresenceMember(id: self.memberID, nick: self.nick, user: self.identity?.userID)
    }

    func welcome() {
        let limits = self.endpoint.limits
        self.send(
            WelcomeFrame(
                auth: self.endpoint.auth.mode,
                limits: .init(
                    maxFrameBytes: limits.maxFrameBytes, maxTextCharacters: limits.maxTextCharacters,
                    maxRooms: limits.maxRoomsPerSocket, history: limits.history)))
        self.armAuthDeadline()
    }

    func received(_ message: WebSocketMessage) {
        if self.isVerifying, self.identity == nil {
            guard self.heldWhileVerifying.count < 32 else {
                self.endpoint.sockets.counters.count(.rateLimited)
                return self.send(ErrorFrame("auth_pending", "wait for the token to be verified"))
            }
            return self.heldWhileVerifying.append(message)
        }
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
        if frame.type == "auth" { return self.authenticate(frame.token, ref: ref) }
        guard self.mayProceed(ref: ref) else { return }
        switch frame.type {
        case "nick": self.setNick(frame.nick, ref: ref)
        case "join": self.join(frame.room, since: frame.since, ref: ref)
        case "leave": self.leave(frame.room, ref: ref)
        case "say": self.say(frame.text, in: frame.room, ref: ref)
        default: self.send(ErrorFrame("unknown_type", "type must be auth, nick, join, leave or say", ref: ref))
        }
    }

    func closed() {
        self.isClosed = true
        self.authTimer?.cancel()
        self.refreshTimer?.cancel()
        if self.reportedOpen { self.endpoint.observer?.socketClosed(self.presenceMember) }
        if let user = self.countedUser {
            self.endpoint.users.disconnect(user)
            self.endpoint.userSockets.remove(self, user: user)
        }
        for member in self.rooms.values {
            member.leave()
            self.endpoint.directory.leave(member.room)
        }
        self.rooms.removeAll()
        for room in self.present { self.endpoint.presence.leave(self.presenceMember, room: room) }
        self.present.removeAll()
    }

    // MARK: Requests

    private func setNick(_ nick: String?, ref: String?) {
        guard self.identity == nil else {
            return self.send(ErrorFrame("nick_fixed", "with a token, the name is the token's", ref: ref))
        }
        guard self.allowed(self.rate.nicks.take(now: Self.now()), "nickname changes", room: nil, ref: ref) else {
            return
        }
        guard let nick = nick.flatMap(DisplayName.normalized) else {
            return self.send(
                ErrorFrame(
                    "invalid_nick",
                    "a nickname is 1 to 32 visible characters of one script; no control, format or look-alike "
                        + "characters",
                    ref: ref))
        }
        let previous = self.presenceMember
        self.nick = nick
        // In presence, a new nickname is a leave under the old one and a join under the new one. Applied before
        // anything is sent: a send can find the connection gone, and the store must already match the session
        // when its close is handled.
        if previous != self.presenceMember {
            for room in self.present {
                self.endpoint.presence.leave(previous, room: room)
                self.endpoint.presence.enter(self.presenceMember, room: room, promise: nil)
            }
        }
        self.send(SimpleFrame(type: "nick", nick: nick, ref: ref))
    }

    private func join(_ room: String?, since: String?, ref: String?) {
        guard let room, ChatNames.isValidRoom(room) else {
            return self.send(ErrorFrame("invalid_room", "a room is 1 to 64 of A-Z a-z 0-9 - _ .", ref: ref))
        }
        guard self.allowed(self.rate.joins.take(now: Self.now()), "joins and leaves", room: room, ref: ref) else {
            return
        }
        if let member = self.rooms[room] {
            // Joining a room the socket is in re-syncs it (after a gap, or with `since`): membership and presence
            // stay; the history since the client's last message goes out again, then the live messages held meanwhile.
            guard since != nil || member.awaitsResync, self.present.contains(room) else {
                return self.send(
                    ErrorFrame("already_joined", "this socket is in \(room) already", room: room, ref: ref))
            }
            return self.resync(member, since: since, ref: ref)
        }
        guard self.endpoint.auth.mayJoin(room, as: self.identity) else {
            self.endpoint.sockets.counters.count(.joinForbidden)
            return self.send(
                ErrorFrame(
                    "forbidden", "\(room) is a members-only room; your token does not list it", room: room, ref: ref))
        }
        guard self.rooms.count < self.endpoint.limits.maxRoomsPerSocket else {
            return self.send(
                ErrorFrame(
                    "too_many_rooms", "at most \(self.endpoint.limits.maxRoomsPerSocket) rooms", room: room, ref: ref))
        }
        if !self.reportedOpen {
            // An anonymous socket is in use from its first join.
            self.reportedOpen = true
            self.endpoint.observer?.socketOpened(self.presenceMember)
        }
        guard self.endpoint.directory.enter(room) else {
            self.endpoint.sockets.counters.count(.roomsFull)
            self.endpoint.logger.warning(
                "Room limit of this node reached: a join was refused",
                metadata: ["switchboard.rooms": "\(self.endpoint.directory.maxRooms)"])
            return self.send(
                ErrorFrame(
                    "rooms_full", "this server holds as many rooms as it may; try again later", room: room, ref: ref))
        }
        // Live messages are held from the moment the member attaches until the history is sent.
        let member = RoomMember(socket: self.socket, room: room) { [weak self] member in self?.lostMessages(member) }
        self.rooms[room] = member
        let attempt = self.armAnswerDeadline(member, ref: ref, rejoining: false)
        let eventLoop = self.socket.eventLoop
        let session = NIOLoopBound(self, eventLoop: eventLoop)
        let joining = NIOLoopBound(member, eventLoop: eventLoop)
        let endpoint = self.endpoint
        let hookMember = self.hookMember
        // A join waits for the broker subscription, the history and the member list: async work started from a
        // callback on the loop. One task per join (not per message); the session's state stays on the loop.
        Task {
            do {
                if let hook = endpoint.sockets.configuration.hooks.join,
                    case .refuse(let reason) = await hook(hookMember, room)
                {
                    eventLoop.execute { session.value.joinRefused(joining.value, reason: reason, ref: ref) }
                    return
                }
                let reservation = try await endpoint.topics.reserve(RoomChannel.name(of: room), on: eventLoop)
                // Attached (on the loop) before the history is read: nothing published after the read is missed,
                // and the hand-over sends anything in both exactly once.
                let entered = try await eventLoop.submit {
                    session.value.admitted(joining.value, reservation: reservation)
                }.value()
                guard let entered else { return }  // closed or left meanwhile
                try await entered.value()
                try await RoomSession.catchUp(session, joining, attempt: attempt, room: room, since: since, ref: ref)
            } catch {
                eventLoop.execute { session.value.joinFailed(joining.value, error: error, ref: ref) }
            }
        }
    }

    /// Sends the history since `since` again and hands over to the live messages held meanwhile.
    private func resync(_ member: RoomMember, since: String?, ref: String?) {
        member.restartHandOver()
        let attempt = self.armAnswerDeadline(member, ref: ref, rejoining: true)
        let eventLoop = self.socket.eventLoop
        let session = NIOLoopBound(self, eventLoop: eventLoop)
        let resyncing = NIOLoopBound(member, eventLoop: eventLoop)
        let room = member.room
        // The history and the member list are async reads started from a callback on the loop; one task per
        // re-sync, which only a gap or the client's own request starts.
        Task {
            do {
                try await RoomSession.catchUp(session, resyncing, attempt: attempt, room: room, since: since, ref: ref)
            } catch {
                eventLoop.execute { session.value.resyncFailed(resyncing.value, error: error, ref: ref) }
            }
        }
    }

    /// A join or re-sync must be answered (its `joined` frame on its way) within ``RoomsLimits/joinTimeout``: with the
    /// broker or the stores hung, each step would wait for its own timeout, one after the other. Past it the client
    /// gets `unavailable` at once, and the attempt is void: whatever its steps still do is ignored.
    ///
    /// - Returns: The attempt's number, which its catch-up carries.
    private func armAnswerDeadline(_ member: RoomMember, ref: String?, rejoining: Bool) -> Int {
        member.attempt += 1
        member.isAnswered = false
        let attempt = member.attempt
        let session = NIOLoopBound(self, eventLoop: self.socket.eventLoop)
        let bound = NIOLoopBound(member, eventLoop: self.socket.eventLoop)
        member.answerDeadline?.cancel()
        member.answerDeadline = self.socket.eventLoop.scheduleTask(in: self.endpoint.limits.joinTimeout) {
            let (session, member) = (session.value, bound.value)
            guard member.attempt == attempt, !member.isAnswered, session.rooms[member.room] === member else { return }
            member.attempt += 1
            session.endpoint.sockets.counters.count(.joinTimeout)
            let error = RoomJoinTimeout(limit: session.endpoint.limits.joinTimeout)
            if rejoining {
                session.resyncFailed(member, error: error, ref: ref)
            } else {
                session.joinFailed(member, error: error, ref: ref)
            }
        }
        return attempt
    }

    private func resyncFailed(_ member: RoomMember, error: any Error, ref: String?) {
        guard self.rooms[member.room] === member else { return }
        self.endpoint.logger.warning(
            "Re-syncing a room failed", metadata: ["room": "\(member.room)", "error": "\(error)"])
        // Still holding: the client is told to try again, as after a gap.
        member.awaitsResync = true
        self.send(
            ErrorFrame(
                "unavailable", "the history could not be read; join again to re-sync", room: member.room, ref: ref))
    }

    /// The topic reservation is made: attaches the member and enters presence. Returns when presence is stored,
    /// or `nil` if the socket closed or left the room meanwhile.
    private func admitted(_ member: RoomMember, reservation: TopicReservation) -> EventLoopFuture<Void>? {
        guard !self.isClosed, self.rooms[member.room] === member else {
            reservation.release()
            return nil
        }
        member.membership = reservation.attach(member)
        self.present.insert(member.room)
        let stored = self.socket.eventLoop.makePromise(of: Void.self)
        self.endpoint.presence.enter(self.presenceMember, room: member.room, promise: stored)
        return stored.futureResult
    }

    /// The join hook refused: the join is undone and the client told `forbidden` with the backend's reason.
    private func joinRefused(_ member: RoomMember, reason: String, ref: String?) {
        guard self.rooms[member.room] === member else { return }
        self.rooms[member.room] = nil
        self.endpoint.directory.leave(member.room)
        member.leave()
        member.answerDeadline?.cancel()
        self.endpoint.sockets.counters.count(.joinForbidden)
        self.send(ErrorFrame("forbidden", reason, room: member.room, ref: ref))
    }

    private func joinFailed(_ member: RoomMember, error: any Error, ref: String?) {
        // Undo whatever part of this join happened: topic membership, presence entry.
        guard self.rooms[member.room] === member else { return }
        self.rooms[member.room] = nil
        self.endpoint.directory.leave(member.room)
        member.leave()
        if self.present.remove(member.room) != nil {
            self.endpoint.presence.leave(self.presenceMember, room: member.room)
        }
        self.endpoint.logger.warning(
            "Joining a room failed", metadata: ["room": "\(member.room)", "error": "\(error)"])
        self.send(
            ErrorFrame("unavailable", "the message broker is unavailable; try again", room: member.room, ref: ref))
    }

    private func leave(_ room: String?, ref: String?) {
        guard self.allowed(self.rate.joins.take(now: Self.now()), "joins and leaves", room: room, ref: ref) else {
            return
        }
        guard let room, let member = self.rooms.removeValue(forKey: room) else {
            return self.send(ErrorFrame("not_joined", "this socket is not in that room", room: room, ref: ref))
        }
        member.leave()
        self.endpoint.directory.leave(room)
        if self.present.remove(room) != nil { self.endpoint.presence.leave(self.presenceMember, room: room) }
        self.send(SimpleFrame(type: "left", room: room, ref: ref))
    }

    private func say(_ text: String?, in room: String?, ref: String?) {
        guard let room, self.rooms[room] != nil else {
            return self.send(
                ErrorFrame("not_joined", "join the room before saying something in it", room: room, ref: ref))
        }
        guard let text, !text.isEmpty, text.count <= self.endpoint.limits.maxTextCharacters else {
            return self.send(
                ErrorFrame(
                    "invalid_text", "text is 1 to \(self.endpoint.limits.maxTextCharacters) characters", ref: ref))
        }
        let now = Self.now()
        guard self.allowed(self.rate.say.take(now: now), "messages", room: room, ref: ref),
            self.allowed(self.rate.sayBytes.take(Double(text.utf8.count), now: now), "bytes", room: room, ref: ref),
            self.allowed(
                self.countedUser.flatMap { self.endpoint.users.takeSay($0, now: now) }, "messages of this user",
                room: room, ref: ref)
        else { return }
        if let hook = self.endpoint.sockets.configuration.hooks.say {
            return self.askSayHook(hook, text: text, room: room, ref: ref)
        }
        self.post(text, room: room, ref: ref)
    }

    /// Asks the say hook, then posts (or refuses) in the order the socket sent its messages: hooks run at once,
    /// answers are applied one after the other.
    private func askSayHook(
        _ hook: @escaping @Sendable (ChatHooks.Member, String, String) async -> ChatHooks.SayDecision, text: String,
        room: String, ref: String?
    ) {
        let eventLoop = self.socket.eventLoop
        let previous = self.lastSay ?? eventLoop.makeSucceededVoidFuture()
        let done = eventLoop.makePromise(of: Void.self)
        self.lastSay = done.futureResult
        let session = NIOLoopBound(self, eventLoop: eventLoop)
        let member = self.hookMember
        Task {
            let decision = await hook(member, room, text)
            previous.whenComplete { _ in
                session.value.applySay(decision, room: room, ref: ref)
                done.succeed()
            }
        }
    }

    private func applySay(_ decision: ChatHooks.SayDecision, room: String, ref: String?) {
        guard !self.isClosed, self.rooms[room] != nil else { return }
        switch decision {
        case .send(let text):
            guard !text.isEmpty, text.count <= self.endpoint.limits.maxTextCharacters else {
                return self.send(
                    ErrorFrame("rejected", "the moderated text is empty or too long", room: room, ref: ref))
            }
            self.post(text, room: room, ref: ref)
        case .reject(let reason):
            self.send(ErrorFrame("rejected", reason, room: room, ref: ref))
        }
    }

    /// Stores and publishes a message of this socket; the observer hears of it once stored.
    private func post(_ text: String, room: String, ref: String?) {
        let logger = self.endpoint.logger
        let promise = self.socket.eventLoop.makePromise(of: Void.self)
        let session = NIOLoopBound(self, eventLoop: self.socket.eventLoop)
        promise.futureResult.whenComplete { result in
            switch result {
            case .success:
                session.value.endpoint.observer?.said(session.value.presenceMember, room: room, text: text)
            case .failure(let error):
                logger.debug("Posting a room message failed", metadata: ["error": "\(error)"])
                session.value.endpoint.sockets.counters.count(.publishFailed)
                session.value.send(
                    ErrorFrame("unavailable", "the message could not be stored; try again", room: room, ref: ref))
            }
        }
        self.endpoint.log.post(room: room, nick: self.nick, user: self.identity?.userID, text: text, promise: promise)
    }

    /// Messages of `member`'s room may have been lost for this socket: its live messages are held, and the client
    /// is told to re-sync (it joins the room again with the id of the last message it has).
    func lostMessages(_ member: RoomMember) {
        guard self.rooms[member.room] === member else { return }
        self.endpoint.logger.debug("Room messages may have been lost", metadata: ["room": "\(member.room)"])
        member.awaitsResync = true
        self.send(SimpleFrame(type: "gap", room: member.room))
    }

    func send(_ frame: some Encodable) {
        guard let data = try? self.encoder.encode(frame) else { return }
        try? self.socket.send(WebSocketMessage(kind: .text, data: ByteBuffer(bytes: data)))
    }
}

/// A join or re-sync not answered within ``RoomsLimits/joinTimeout``.
struct RoomJoinTimeout: Error, CustomStringConvertible {
    let limit: TimeAmount

    var description: String { "not answered within \(self.limit.nanoseconds / 1_000_000) ms" }
}
