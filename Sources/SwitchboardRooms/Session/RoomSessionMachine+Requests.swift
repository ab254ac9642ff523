import FoundationEssentials
import Logging
import NIOCore
import SwitchboardAuth
import SwitchboardWebSocket

/// The client's requests: one JSON frame each (docs/PROTOCOL.md).
extension RoomSessionMachine {
    /// The most frames held while the first token is verified.
    static let maxHeldWhileVerifying = 32

    /// A frame from the client: a request, and the refusal count it moves (any error answered is a refusal; a request
    /// that goes through resets the count; past the limit the socket is dropped).
    mutating func received(
        _ bytes: ByteBuffer, isText: Bool, metered: Bool = true, now: UInt64, directory: some RoomSessionDirectory,
        into actions: inout [Action]
    ) {
        guard !self.isDropped else { return }
        let start = actions.count
        self.request(bytes, isText: isText, metered: metered, now: now, directory: directory, into: &actions)
        let errors = actions[start...].compactMap { if case .send(let frame) = $0 { frame.errorCode } else { nil } }
        if errors.isEmpty {
            if actions.count > start { self.rate.refusals = 0 }
            return
        }
        // Rate limits count themselves; any other error answered was a request that could not be done.
        if errors.contains(where: { $0 != "rate_limited" }) { actions.append(.count(.invalidRequest)) }
        self.refuse(into: &actions)
    }

    /// Counts a refusal; past ``ChatRateLimits/maxRefusals`` in a row the socket is dropped (4008): closed, and read
    /// no further.
    mutating func refuse(into actions: inout [Action]) {
        self.rate.refusals += 1
        guard self.rate.refusals > self.settings.rateLimits.maxRefusals else { return }
        self.isDropped = true
        actions.append(.count(.refusalsClosed))
        actions.append(.drop(.rateLimited, reason: "too many refused requests"))
    }

    private mutating func request(
        _ bytes: ByteBuffer, isText: Bool, metered: Bool, now: UInt64, directory: some RoomSessionDirectory,
        into actions: inout [Action]
    ) {
        // Every frame costs, whatever it asks and whether or not it is refused (a held frame paid when it came).
        if metered {
            let cost = self.rate.frames.take(now: now)
            guard self.allowed(cost, "frames", room: nil, ref: nil, into: &actions) else { return }
        }
        if self.verifying != nil, self.identity == nil {
            guard self.held.count < Self.maxHeldWhileVerifying else {
                actions.append(.count(.rateLimited))
                return actions.append(.send(.error("auth_pending", "wait for the token to be verified")))
            }
            return self.held.append((bytes, isText))
        }
        let limits = self.settings.limits
        guard bytes.readableBytes <= limits.maxFrameBytes else {
            return actions.append(.send(.error("too_large", "frames are limited to \(limits.maxFrameBytes) bytes")))
        }
        guard isText, let frame = try? JSONDecoder().decode(ClientFrame.self, from: Data(bytes.readableBytesView))
        else {
            return actions.append(.send(.error("bad_json", "each frame must be one JSON object with string fields")))
        }
        let ref = frame.ref.flatMap { $0.count <= 64 ? $0 : nil }
        if frame.type == "auth" { return self.authenticate(frame.token, ref: ref, now: now, into: &actions) }
        guard self.identity != nil || self.settings.auth.allowsAnonymous else {
            return actions.append(.send(.error("unauthenticated", "send auth with a token first", ref: ref)))
        }
        switch frame.type {
        case "nick": self.setNick(frame.nick, ref: ref, now: now, into: &actions)
        case "join": self.join(frame.room, since: frame.since, ref: ref, now: now, directory: directory, into: &actions)
        case "leave": self.leave(frame.room, ref: ref, now: now, directory: directory, into: &actions)
        case "say": self.say(frame.text, in: frame.room, ref: ref, now: now, directory: directory, into: &actions)
        default:
            actions.append(.send(.error("unknown_type", "type must be auth, nick, join, leave or say", ref: ref)))
        }
    }

    /// Runs the frames held while the first token was verified, now as the user it proved (or anonymously, or
    /// refused).
    mutating func replayHeld(now: UInt64, directory: some RoomSessionDirectory, into actions: inout [Action]) {
        let held = self.held
        self.held = []
        for (bytes, isText) in held where !self.isClosed {
            self.received(bytes, isText: isText, metered: false, now: now, directory: directory, into: &actions)
        }
    }

    private mutating func setNick(_ nick: String?, ref: String?, now: UInt64, into actions: inout [Action]) {
        guard self.identity == nil else {
            return actions.append(.send(.error("nick_fixed", "with a token, the name is the token's", ref: ref)))
        }
        let wait = self.rate.nicks.take(now: now)
        guard self.allowed(wait, "nickname changes", room: nil, ref: ref, into: &actions) else { return }
        guard let nick = nick.flatMap(DisplayName.normalized) else {
            return actions.append(
                .send(
                    .error(
                        "invalid_nick",
                        "a nickname is 1 to 32 visible characters of one script; no control, format or look-alike "
                            + "characters",
                        ref: ref)))
        }
        let previous = self.presenceMember
        self.nick = nick
        // In presence, a new nickname is a leave under the old one and a join under the new one. Asked for before
        // anything is sent: a send can find the connection gone, and the store must already match the session
        // when its close is handled.
        self.movePresence(from: previous, into: &actions)
        actions.append(.send(.simple(SimpleFrame(type: "nick", nick: nick, ref: ref))))
    }

    /// Presence follows a change of this socket's name: a leave under the old one, a join under the new one.
    mutating func movePresence(from previous: PresenceMember, into actions: inout [Action]) {
        guard previous != self.presenceMember else { return }
        for room in self.rooms.keys.sorted() where self.rooms[room]?.isPresent == true {
            actions.append(.leavePresence(previous, room: room))
            actions.append(.enterPresence(self.presenceMember, room: room, attempt: nil))
        }
    }

    private mutating func leave(
        _ room: String?, ref: String?, now: UInt64, directory: some RoomSessionDirectory, into actions: inout [Action]
    ) {
        let wait = self.rate.joins.take(now: now)
        guard self.allowed(wait, "joins and leaves", room: room, ref: ref, into: &actions) else { return }
        guard let room, self.rooms[room] != nil else {
            return actions.append(.send(.error("not_joined", "this socket is not in that room", room: room, ref: ref)))
        }
        self.removeRoom(room, directory: directory, into: &actions)
        actions.append(.send(.simple(SimpleFrame(type: "left", room: room, ref: ref))))
    }

    private mutating func say(
        _ text: String?, in room: String?, ref: String?, now: UInt64, directory: some RoomSessionDirectory,
        into actions: inout [Action]
    ) {
        guard let room, self.rooms[room] != nil else {
            return actions.append(
                .send(.error("not_joined", "join the room before saying something in it", room: room, ref: ref)))
        }
        let maxCharacters = self.settings.limits.maxTextCharacters
        guard let text, !text.isEmpty, text.count <= maxCharacters else {
            return actions.append(.send(.error("invalid_text", "text is 1 to \(maxCharacters) characters", ref: ref)))
        }
        let messages = self.rate.say.take(now: now)
        guard self.allowed(messages, "messages", room: room, ref: ref, into: &actions) else { return }
        let bytes = self.rate.sayBytes.take(Double(text.utf8.count), now: now)
        guard self.allowed(bytes, "bytes", room: room, ref: ref, into: &actions) else { return }
        if let (what, wait) = directory.takeMessage(of: self.countedUser, now: now) {
            _ = self.allowed(wait, what, room: room, ref: ref, into: &actions)
            return
        }
        guard self.settings.asksSayHook else {
            return actions.append(.post(room: room, text: text, ref: ref, self.presenceMember))
        }
        // The hook is asked at once; its answers are applied in the order the messages were sent.
        actions.append(.askSayHook(sequence: self.nextSay, self.hookMember, room: room, text: text))
        self.pendingSays[self.nextSay] = (room, ref)
        self.nextSay += 1
    }

    mutating func sayAnswered(sequence: Int, _ decision: ChatHooks.SayDecision, into actions: inout [Action]) {
        guard let (room, ref) = self.pendingSays.removeValue(forKey: sequence) else { return }
        self.sayAnswers[sequence] = (decision, room, ref)
        while let answer = self.sayAnswers.removeValue(forKey: self.nextApply) {
            self.nextApply += 1
            self.apply(answer.decision, room: answer.room, ref: answer.ref, into: &actions)
        }
    }

    private func apply(_ decision: ChatHooks.SayDecision, room: String, ref: String?, into actions: inout [Action]) {
        guard self.rooms[room] != nil else { return }
        switch decision {
        case .send(let text):
            guard !text.isEmpty, text.count <= self.settings.limits.maxTextCharacters else {
                return actions.append(
                    .send(.error("rejected", "the moderated text is empty or too long", room: room, ref: ref)))
            }
            actions.append(.post(room: room, text: text, ref: ref, self.presenceMember))
        case .reject(let reason):
            actions.append(.send(.error("rejected", reason, room: room, ref: ref)))
        }
    }

    mutating func posted(
        room: String, ref: String?, text: String, member: PresenceMember, _ result: Result<Void, any Error>,
        into actions: inout [Action]
    ) {
        switch result {
        case .success:
            actions.append(.said(member, room: room, text: text))
        case .failure(let error):
            actions.append(.log(.debug, "Posting a room message failed", ["error": "\(error)"]))
            actions.append(.count(.publishFailed))
            actions.append(
                .send(.error("unavailable", "the message could not be stored; try again", room: room, ref: ref)))
        }
    }

    /// Whether a rate limit let a request through (`wait` is `nil`); if not, tells the client when to try again (the
    /// refusal is counted by ``received(_:isText:now:directory:into:)``).
    func allowed(
        _ wait: UInt64?, _ what: String, room: String?, ref: String?, into actions: inout [Action]
    ) -> Bool {
        guard let wait else { return true }
        actions.append(.count(.rateLimited))
        let milliseconds = Int((wait + 999_999) / 1_000_000)
        actions.append(
            .send(
                .error(
                    "rate_limited", "too many \(what); try again in \(milliseconds) ms", room: room,
                    retryAfter: milliseconds, ref: ref)))
        return false
    }
}
