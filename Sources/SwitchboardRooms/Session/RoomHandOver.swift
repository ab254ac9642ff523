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
    /// What a live frame of a room is, for the hand-over.
    enum Kind {
        /// A room message with its id: in the history, ordered.
        case message(id: String)
        /// A presence event about one member: not in the history; events about a member are idempotent (join sets,
        /// leave clears), so of those held only the latest per member matters.
        case presence(member: String)
        /// Anything else: passed on as it is.
        case other
    }

    /// Frames held while waiting for a history.
    struct Held {
        /// Room messages and other frames, in order.
        var messages: [PreparedMessage] = []
        /// The latest presence event per member, with the order in which the members' events arrived.
        var presence: [String: PreparedMessage] = [:]
        var presenceOrder: [String] = []

        /// Everything held, to send after the history: the latest presence event of each member, then the rest.
        var all: [PreparedMessage] { self.presenceOrder.compactMap { self.presence[$0] } + self.messages }
    }

    enum State {
        /// Waiting for the history: live frames wait here. `gapped`: messages were lost meanwhile, so this
        /// history will not be enough and the client must re-sync once it is sent.
        case holding(Held, overflowed: Bool, gapped: Bool)
        /// The history is sent up to `newest`: live room messages up to it are duplicates.
        case filtering(newest: String)
        /// Every message is new.
        case live
    }

    private(set) var state: State = .holding(Held(), overflowed: false, gapped: false)
    /// The most room messages held for one socket (presence events are bounded by the room's members).
    let maxHeld: Int
    /// What a live frame is.
    let classify: (PreparedMessage) -> Kind

    init(maxHeld: Int = 4096, classify: @escaping (PreparedMessage) -> Kind) {
        self.maxHeld = maxHeld
        self.classify = classify
    }

    /// The id of a room message; `nil` for other frames.
    private func messageID(_ message: PreparedMessage) -> String? {
        if case .message(let id) = self.classify(message) { return id }
        return nil
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
        case .holding(var held, var overflowed, let gapped):
            self.state = .live  // keeps `held` uniquely referenced while it grows
            for message in frames.messages {
                switch self.classify(message) {
                case .presence(let member):
                    if held.presence.updateValue(message, forKey: member) == nil { held.presenceOrder.append(member) }
                case .message, .other:
                    if held.messages.count < self.maxHeld {
                        held.messages.append(message)
                    } else {
                        overflowed = true
                    }
                }
            }
            self.state = .holding(held, overflowed: overflowed, gapped: gapped)
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
        self.state = .holding(Held(), overflowed: false, gapped: false)
        return .tellClient
    }

    /// Holds live messages again for a re-sync the client asked for.
    mutating func restart() {
        if !self.isHolding { self.state = .holding(Held(), overflowed: false, gapped: false) }
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
            self.state = .holding(Held(), overflowed: false, gapped: false)
            return .gapped
        }
        guard let newest else {
            self.state = .live
            return .send(held.all)
        }
        self.state = .filtering(newest: newest)
        var toSend: [PreparedMessage] = []
        for message in held.all {
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
