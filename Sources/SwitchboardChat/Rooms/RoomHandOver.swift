import SwitchboardWebSocket

/// Exactly once from history to live messages, for one socket in one room: on join, and again after a gap.
///
/// A joining socket is a member of the room's topic before its history is read, so nothing published meanwhile is
/// missed; some messages then arrive both in the history and live. Until the history is sent, live messages are
/// held (up to a bound); once it is sent, held and live messages the history already had are dropped, until the
/// first newer one, after which every message is new (a room's messages arrive in id order).
///
/// When messages may have been lost (a gap), live messages are held again until the client has re-synced from
/// the history (it joins again with `since`), so what it shows stays complete and in order.
struct RoomHandOver {
    enum State {
        /// Waiting for the history: live messages wait here. `gapped`: messages were lost meanwhile, so this
        /// history will not be enough and the client must re-sync once it is sent.
        case holding([PreparedMessage], overflowed: Bool, gapped: Bool)
        /// The history is sent up to `newest`: live room messages up to it are duplicates.
        case filtering(newest: String)
        /// Every message is new.
        case live
    }

    private(set) var state: State = .holding([], overflowed: false, gapped: false)
    /// The most messages held for one socket.
    let maxHeld: Int
    /// The id of a room message (`nil` for other frames, such as presence events, which the history lacks).
    let messageID: (PreparedMessage) -> String?

    init(maxHeld: Int = 4096, messageID: @escaping (PreparedMessage) -> String?) {
        self.maxHeld = maxHeld
        self.messageID = messageID
    }

    /// Whether live messages are being held (a join or a re-sync is in progress).
    var isHolding: Bool {
        if case .holding = self.state { return true }
        return false
    }

    /// Live messages arrived; returns those to send now (`nil` for none).
    mutating func received(_ frames: PreparedFrames) -> PreparedFrames? {
        switch self.state {
        case .live:
            return frames
        case .holding(var held, let overflowed, let gapped):
            let room = self.maxHeld - held.count
            held.append(contentsOf: frames.messages.prefix(room))
            self.state = .holding(held, overflowed: overflowed || frames.count > room, gapped: gapped)
            return nil
        case .filtering(let newest):
            var caughtUp = false
            let kept = frames.filter { message in
                if caughtUp { return true }
                guard let id = self.messageID(message) else { return true }
                caughtUp = RoomMessageID.isAfter(id, newest)
                return caughtUp
            }
            if caughtUp { self.state = .live }
            return kept.isEmpty ? nil : kept
        }
    }

    /// What to do about a gap.
    enum GapAction: Equatable {
        /// Tell the client to re-sync (live messages are held from now on).
        case tellClient
        /// Nothing yet: a history is on its way; the client is told once it is sent.
        case none
    }

    /// Messages may have been lost.
    mutating func gapped() -> GapAction {
        if case .holding(let held, let overflowed, _) = self.state {
            self.state = .holding(held, overflowed: overflowed, gapped: true)
            return .none
        }
        self.state = .holding([], overflowed: false, gapped: false)
        return .tellClient
    }

    /// Holds live messages again for a re-sync the client asked for.
    mutating func restart() {
        if !self.isHolding { self.state = .holding([], overflowed: false, gapped: false) }
    }

    /// What to do once the history went out.
    enum HistoryAction {
        /// Send these held messages (the ones the history lacks), in order.
        case send([PreparedMessage])
        /// More arrived while joining than are held: the socket cannot be caught up live.
        case overflowed
        /// Messages were lost while the history was read: the client must re-sync again (live messages stay held).
        case gapped
    }

    /// The history was sent; `newest` is the newest message id the client now has (`nil` if none, so everything
    /// live is new).
    mutating func historySent(newest: String?) -> HistoryAction {
        guard case .holding(let held, let overflowed, let gapped) = self.state else { return .send([]) }
        guard !overflowed else {
            self.state = .live
            return .overflowed
        }
        guard !gapped else {
            self.state = .holding([], overflowed: false, gapped: false)
            return .gapped
        }
        guard let newest else {
            self.state = .live
            return .send(held)
        }
        self.state = .filtering(newest: newest)
        var toSend: [PreparedMessage] = []
        for message in held {
            if case .live = self.state {
                toSend.append(message)
                continue
            }
            guard let id = self.messageID(message) else {
                toSend.append(message)
                continue
            }
            if RoomMessageID.isAfter(id, newest) {
                self.state = .live
                toSend.append(message)
            }
        }
        return .send(toSend)
    }
}
