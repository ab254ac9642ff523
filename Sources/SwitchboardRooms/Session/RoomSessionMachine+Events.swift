import FoundationEssentials
import Logging
import NIOCore
import SwitchboardAuth
import SwitchboardWebSocket

extension RoomSessionMachine {
    /// Handles `event` and returns what to do, in order.
    ///
    /// - Parameters:
    ///   - now: The monotonic clock in nanoseconds, for the rate limits.
    ///   - directory: The node's registry, for this socket.
    package mutating func handle(
        _ event: Event, now: UInt64, directory: some RoomSessionDirectory
    ) -> [Action] {
        var actions: [Action] = []
        self.handle(event, now: now, directory: directory, into: &actions)
        return actions
    }

    mutating func handle(
        _ event: Event, now: UInt64, directory: some RoomSessionDirectory, into actions: inout [Action]
    ) {
        // After the close nothing is done: each result of async work is stale then.
        if self.isClosed { return }
        switch event {
        case .opened(let preset):
            self.open(preset: preset, now: now, directory: directory, into: &actions)
        case .received(let bytes, let isText):
            self.received(bytes, isText: isText, now: now, directory: directory, into: &actions)
        case .verified(let attempt, let result):
            self.verified(attempt: attempt, result, now: now, directory: directory, into: &actions)
        case .joinHookAnswered(let room, let attempt, let decision):
            self.joinHookAnswered(room: room, attempt: attempt, decision, directory: directory, into: &actions)
        case .reserved(let room, let attempt, let result):
            self.reserved(room: room, attempt: attempt, result, directory: directory, into: &actions)
        case .presenceStored(let room, let attempt, let result):
            self.presenceStored(room: room, attempt: attempt, result, directory: directory, into: &actions)
        case .historyRead(let room, let attempt, let result):
            self.historyRead(room: room, attempt: attempt, result, now: now, directory: directory, into: &actions)
        case .historySent(let room, let attempt):
            self.historySent(room: room, attempt: attempt, into: &actions)
        case .handedOver(let room, let attempt, let outcome):
            self.handedOver(room: room, attempt: attempt, outcome, into: &actions)
        case .messagesLost(let room):
            self.messagesLost(room: room, into: &actions)
        case .sayAnswered(let sequence, let decision):
            self.sayAnswered(sequence: sequence, decision, into: &actions)
        case .posted(let room, let ref, let text, let member, let result):
            self.posted(room: room, ref: ref, text: text, member: member, result, into: &actions)
        case .timerFired(let timer, let stamp):
            self.timerFired(timer, stamp: stamp, directory: directory, into: &actions)
        case .disconnect(let code, let reason):
            actions.append(
                .log(
                    .info, "Socket disconnected through the server API",
                    ["user": "\(self.countedUser ?? "")", "code": "\(code.rawValue)"]))
            actions.append(.close(code, reason: reason))
        case .unsubscribe(let room):
            guard self.rooms[room] != nil else { return }
            self.removeRoom(room, directory: directory, into: &actions)
            actions.append(.send(.unsubscribed(UnsubscribedFrame(room: room))))
        case .closed:
            self.close(directory: directory, into: &actions)
        }
    }

    /// The socket opened: the welcome, the deadline for a token when one is required, the connect hook's identity.
    private mutating func open(
        preset: Identity?, now: UInt64, directory: some RoomSessionDirectory, into actions: inout [Action]
    ) {
        let limits = self.settings.limits
        actions.append(
            .send(
                .welcome(
                    WelcomeFrame(
                        auth: self.settings.auth.mode,
                        limits: .init(
                            maxFrameBytes: limits.maxFrameBytes, maxTextCharacters: limits.maxTextCharacters,
                            maxRooms: limits.maxRoomsPerSocket, history: self.settings.historyShown)))))
        let auth = self.settings.auth
        if auth.verifier != nil, !auth.allowsAnonymous {
            actions.append(.schedule(.auth, in: auth.authTimeout, stamp: 0))
        }
        if let preset {
            self.accept(preset, ref: nil, now: now, directory: directory, into: &actions)
        }
    }

    /// The connection ended: everything the socket held is given back.
    private mutating func close(directory: some RoomSessionDirectory, into actions: inout [Action]) {
        self.isClosed = true
        actions.append(.cancel(.auth))
        actions.append(.cancel(.refresh))
        if self.reportedOpen { actions.append(.socketClosed(self.presenceMember)) }
        if let user = self.countedUser { directory.release(user: user) }
        for room in self.rooms.keys.sorted() { self.removeRoom(room, directory: directory, into: &actions) }
        self.held = []
        self.pendingSays = [:]
        self.sayAnswers = [:]
    }

    /// Takes the socket out of `room`: topic, registry, presence, deadline.
    mutating func removeRoom(_ name: String, directory: some RoomSessionDirectory, into actions: inout [Action]) {
        guard let room = self.rooms.removeValue(forKey: name) else { return }
        actions.append(.cancel(.join(room: name)))
        if room.isAttached { actions.append(.release(room: name)) }
        directory.leave(room: name)
        if room.isPresent { actions.append(.leavePresence(self.presenceMember, room: name)) }
    }

    private mutating func timerFired(
        _ timer: Timer, stamp: Int, directory: some RoomSessionDirectory, into actions: inout [Action]
    ) {
        switch timer {
        case .auth:
            guard self.identity == nil else { return }
            actions.append(.count(.authRefused))
            actions.append(.close(.unauthorized, reason: "no valid token in time"))
        case .refresh:
            self.refreshTimerFired(stamp: stamp, into: &actions)
        case .join(let room):
            self.joinDeadlinePassed(room: room, attempt: stamp, directory: directory, into: &actions)
        }
    }
}
