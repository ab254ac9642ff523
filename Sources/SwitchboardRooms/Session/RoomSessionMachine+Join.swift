import Logging
import NIOCore
import SwitchboardAuth
import SwitchboardWebSocket

/// Joining a room and catching up: join hook → topic reserved (live messages held from then on) → presence stored →
/// history read and sent a page at a time → hand-over to live messages. A re-sync (after a gap, or a join with
/// `since` of a room the socket is in) starts again from the history.
extension RoomSessionMachine {
    /// The most bytes (estimated) of messages in one history frame: well under the slow-consumer limit.
    static let maxHistoryFrameBytes = 256 * 1024
    /// Messages read from the log at a time.
    package static let historyPageSize = 200

    mutating func join(
        _ room: String?, since: String?, ref: String?, now: UInt64, directory: some RoomSessionDirectory,
        into actions: inout [Action]
    ) {
        guard let room, ChatNames.isValidRoom(room) else {
            return actions.append(.send(.error("invalid_room", "a room is 1 to 64 of A-Z a-z 0-9 - _ .", ref: ref)))
        }
        let wait = self.rate.joins.take(now: now)
        guard self.allowed(wait, "joins and leaves", room: room, ref: ref, into: &actions) else { return }
        // What the socket's joins have sent of history so far, against its budget (a join's is charged as it goes).
        let history = self.rate.catchUpBytes.take(1, now: now)
        guard self.allowed(history, "history bytes", room: room, ref: ref, into: &actions) else { return }
        if let existing = self.rooms[room] {
            // Joining a room the socket is in re-syncs it (after a gap, or with `since`): membership and presence
            // stay; the history since the client's last message goes out again, then the live messages held meanwhile.
            guard since != nil || existing.awaitsResync, existing.isPresent else {
                return actions.append(
                    .send(.error("already_joined", "this socket is in \(room) already", room: room, ref: ref)))
            }
            return self.resync(room, since: since, ref: ref, into: &actions)
        }
        guard self.settings.auth.mayJoin(room, as: self.identity) else {
            actions.append(.count(.joinForbidden))
            return actions.append(
                .send(
                    .error(
                        "forbidden", "\(room) is a members-only room; your token does not list it", room: room,
                        ref: ref)))
        }
        let maxRooms = self.settings.limits.maxRoomsPerSocket
        guard self.rooms.count < maxRooms else {
            return actions.append(.send(.error("too_many_rooms", "at most \(maxRooms) rooms", room: room, ref: ref)))
        }
        if !self.reportedOpen {
            // An anonymous socket is in use from its first join.
            self.reportedOpen = true
            actions.append(.socketOpened(self.presenceMember))
        }
        switch directory.enter(room: room, user: self.countedUser) {
        case nil:
            break
        case .nodeFull:
            actions.append(.count(.roomsFull))
            actions.append(.log(.warning, "Room limit of this node reached: a join was refused", [:]))
            return actions.append(
                .send(
                    .error(
                        "rooms_full", "this server holds as many rooms as it may; try again later", room: room,
                        ref: ref)))
        case .clientQuota(let created):
            actions.append(.count(.roomQuota))
            return actions.append(
                .send(
                    .error(
                        "room_quota",
                        "you created \(created) rooms that are still open here, as many as one client may; join "
                            + "existing rooms or leave some",
                        room: room, ref: ref)))
        }
        self.attempts += 1
        let asksHook = self.settings.asksJoinHook
        self.rooms[room] = Room(
            phase: asksHook ? .askingHook : .reserving, attempt: self.attempts, isResync: false, since: since, ref: ref)
        actions.append(.schedule(.join(room: room), in: self.settings.joinTimeout, stamp: self.attempts))
        actions.append(
            asksHook
                ? .askJoinHook(room: room, attempt: self.attempts, self.hookMember)
                : .reserve(room: room, attempt: self.attempts))
    }

    /// Sends the history since `since` again and hands over to the live messages held meanwhile.
    private mutating func resync(_ name: String, since: String?, ref: String?, into actions: inout [Action]) {
        self.attempts += 1
        self.rooms[name]?.attempt = self.attempts
        self.rooms[name]?.isResync = true
        self.rooms[name]?.phase = .catchingUp(answered: false)
        self.rooms[name]?.since = since
        self.rooms[name]?.ref = ref
        self.rooms[name]?.awaitsResync = false
        self.rooms[name]?.newest = nil
        actions.append(.restartHandOver(room: name))
        actions.append(.schedule(.join(room: name), in: self.settings.joinTimeout, stamp: self.attempts))
        actions.append(.readHistory(room: name, attempt: self.attempts, since: since, withMembers: true))
    }

    /// The room as of `attempt` in `phase`, or `nil` if the result is stale.
    private func current(_ room: String, _ attempt: Int, in phases: Room.Phase...) -> Room? {
        guard let state = self.rooms[room], state.attempt == attempt, phases.contains(state.phase) else { return nil }
        return state
    }

    mutating func joinHookAnswered(
        room: String, attempt: Int, _ decision: ChatHooks.JoinDecision, directory: some RoomSessionDirectory,
        into actions: inout [Action]
    ) {
        guard let state = self.current(room, attempt, in: .askingHook) else { return }
        switch decision {
        case .allow:
            self.rooms[room]?.phase = .reserving
            actions.append(.reserve(room: room, attempt: attempt))
        case .refuse(let reason):
            self.removeRoom(room, directory: directory, into: &actions)
            actions.append(.count(.joinForbidden))
            actions.append(.send(.error("forbidden", reason, room: room, ref: state.ref)))
        }
    }

    mutating func reserved(
        room: String, attempt: Int, _ result: Result<Void, any Error>, directory: some RoomSessionDirectory,
        into actions: inout [Action]
    ) {
        guard self.current(room, attempt, in: .reserving) != nil else { return }
        switch result {
        case .success:
            // Attached before the history is read: nothing published after the read is missed, and the hand-over
            // sends anything in both exactly once.
            self.rooms[room]?.isAttached = true
            self.rooms[room]?.isPresent = true
            self.rooms[room]?.phase = .entering
            actions.append(.enterPresence(self.presenceMember, room: room, attempt: attempt))
        case .failure(let error):
            self.joinFailed(room, error: error, directory: directory, into: &actions)
        }
    }

    mutating func presenceStored(
        room: String, attempt: Int, _ result: Result<Void, any Error>, directory: some RoomSessionDirectory,
        into actions: inout [Action]
    ) {
        guard let state = self.current(room, attempt, in: .entering) else { return }
        switch result {
        case .success:
            self.rooms[room]?.phase = .catchingUp(answered: false)
            actions.append(.readHistory(room: room, attempt: attempt, since: state.since, withMembers: true))
        case .failure(let error):
            self.joinFailed(room, error: error, directory: directory, into: &actions)
        }
    }

    mutating func historyRead(
        room: String, attempt: Int, _ result: Result<HistoryRead, any Error>, now: UInt64,
        directory: some RoomSessionDirectory, into actions: inout [Action]
    ) {
        guard let state = self.current(room, attempt, in: .catchingUp(answered: false), .catchingUp(answered: true))
        else { return }
        let read: HistoryRead
        switch result {
        case .success(let value):
            read = value
        case .failure(let error):
            return state.isResync
                ? self.resyncFailed(room, error: error, into: &actions)
                : self.joinFailed(room, error: error, directory: directory, into: &actions)
        }
        let first = state.phase == .catchingUp(answered: false)
        if !first, read.page.gap {
            // The log was trimmed past what was sent while it was read: the client must re-sync (with a gap).
            return self.messagesLost(room: room, into: &actions)
        }
        let chunks = Self.chunked(read.page.messages)
        self.rate.catchUpBytes.charge(Double(read.page.messages.reduce(0) { $0 + Self.estimatedSize($1) }), now: now)
        var frames: [ServerFrame] = []
        for (index, chunk) in chunks.enumerated() {
            let more = index < chunks.count - 1 || read.page.more
            if frames.isEmpty, first {
                let members = read.members ?? []
                frames.append(
                    .joined(
                        JoinedFrame(
                            room: room, messages: chunk, gap: read.page.gap, members: members,
                            users: PresenceUser.of(members), you: self.presenceMember, more: more, ref: state.ref)))
            } else {
                frames.append(.history(HistoryFrame(room: room, messages: chunk, more: more)))
            }
        }
        if first {
            // Answered: the `joined` frame is on its way, and the deadline no longer applies.
            self.rooms[room]?.phase = .catchingUp(answered: true)
            self.rooms[room]?.newest = read.page.gap ? nil : state.since
            actions.append(.cancel(.join(room: room)))
        }
        if let last = read.page.messages.last?.id { self.rooms[room]?.newest = last }
        self.rooms[room]?.since = read.page.more ? read.page.messages.last?.id : nil
        actions.append(.sendPaced(frames, room: room, attempt: attempt))
    }

    mutating func historySent(room: String, attempt: Int, into actions: inout [Action]) {
        guard let state = self.current(room, attempt, in: .catchingUp(answered: true)) else { return }
        if let next = state.since {
            actions.append(.readHistory(room: room, attempt: attempt, since: next, withMembers: false))
        } else {
            actions.append(.handOver(room: room, attempt: attempt, newest: state.newest))
        }
    }

    mutating func handedOver(
        room: String, attempt: Int, _ outcome: RoomMember.HistoryOutcome, into actions: inout [Action]
    ) {
        guard self.current(room, attempt, in: .catchingUp(answered: true)) != nil else { return }
        self.rooms[room]?.phase = .live
        switch outcome {
        case .delivered:
            break
        case .overflowed:
            // More arrived while joining than are held for one socket: the client catches up from its last id.
            actions.append(.count(.joinOverflow))
            actions.append(.close(.tryAgainLater, reason: "too many messages while joining; rejoin with since"))
        case .gapped:
            self.messagesLost(room: room, into: &actions)
        }
    }

    /// Messages of `room` may have been lost for this socket: its live messages are held, and the client is told
    /// to re-sync (it joins the room again with the id of the last message it has).
    mutating func messagesLost(room: String, into actions: inout [Action]) {
        guard self.rooms[room] != nil else { return }
        actions.append(.log(.debug, "Room messages may have been lost", ["room": "\(room)"]))
        self.rooms[room]?.phase = .live
        self.rooms[room]?.awaitsResync = true
        actions.append(.send(.simple(SimpleFrame(type: "gap", room: room))))
    }

    /// A join or re-sync must be answered (its `joined` frame on its way) within the join timeout: with the broker or
    /// the stores hung, each step would wait for its own timeout, one after the other. Past it the client gets
    /// `unavailable` at once, and the attempt is void: whatever its steps still report is stale.
    mutating func joinDeadlinePassed(
        room: String, attempt: Int, directory: some RoomSessionDirectory, into actions: inout [Action]
    ) {
        guard
            let state = self.current(
                room, attempt, in: .askingHook, .reserving, .entering, .catchingUp(answered: false))
        else { return }
        self.attempts += 1
        self.rooms[room]?.attempt = self.attempts
        actions.append(.count(.joinTimeout))
        let error = RoomJoinTimeout(limit: self.settings.joinTimeout)
        if state.isResync {
            self.resyncFailed(room, error: error, into: &actions)
        } else {
            self.joinFailed(room, error: error, directory: directory, into: &actions)
        }
    }

    /// Undoes whatever part of a join happened (topic membership, presence entry) and tells the client.
    private mutating func joinFailed(
        _ room: String, error: any Error, directory: some RoomSessionDirectory, into actions: inout [Action]
    ) {
        let ref = self.rooms[room]?.ref
        self.removeRoom(room, directory: directory, into: &actions)
        actions.append(.log(.warning, "Joining a room failed", ["room": "\(room)", "error": "\(error)"]))
        actions.append(
            .send(.error("unavailable", "the message broker is unavailable; try again", room: room, ref: ref)))
    }

    /// A re-sync failed: still holding, the client is told to try again, as after a gap.
    private mutating func resyncFailed(_ room: String, error: any Error, into actions: inout [Action]) {
        let ref = self.rooms[room]?.ref
        actions.append(.cancel(.join(room: room)))
        actions.append(.log(.warning, "Re-syncing a room failed", ["room": "\(room)", "error": "\(error)"]))
        self.rooms[room]?.phase = .live
        self.rooms[room]?.awaitsResync = true
        actions.append(
            .send(.error("unavailable", "the history could not be read; join again to re-sync", room: room, ref: ref)))
    }

    /// `messages` in frames of at most ``maxHistoryFrameBytes`` (estimated); at least one, maybe empty, so that a
    /// `joined` frame always goes out.
    static func chunked(_ messages: [RoomMessage]) -> [[RoomMessage]] {
        var chunks: [[RoomMessage]] = [[]]
        var bytes = 0
        for message in messages {
            let size = Self.estimatedSize(message)
            if bytes + size > Self.maxHistoryFrameBytes, !chunks[chunks.count - 1].isEmpty {
                chunks.append([])
                bytes = 0
            }
            chunks[chunks.count - 1].append(message)
            bytes += size
        }
        return chunks
    }
}

extension RoomSessionMachine {
    /// A message's JSON, estimated: its strings and about 100 bytes of keys, id and timestamp.
    static func estimatedSize(_ message: RoomMessage) -> Int {
        message.text.utf8.count + message.nick.utf8.count + message.room.utf8.count + 128
    }
}

/// A join or re-sync not answered within ``RoomsConfiguration/joinTimeout``.
struct RoomJoinTimeout: Error, CustomStringConvertible {
    let limit: TimeAmount

    var description: String { "not answered within \(self.limit.nanoseconds / 1_000_000) ms" }
}
