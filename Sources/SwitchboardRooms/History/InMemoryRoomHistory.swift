import FoundationEssentials
import NIOConcurrencyHelpers
import NIOCore

/// The embedded history: the last messages of each room, in this process's memory, bounded in messages per room,
/// age, rooms and bytes (``RoomHistoryLimits``).
///
/// When the rooms or bytes run out, the history that goes is that of the room nobody has been in for longest: rooms
/// with members on this node (told by ``RoomDirectory`` through ``RoomOccupancyObserver``) are never evicted, so
/// one client touching many rooms only ever evicts empty ones, the oldest first; each eviction is O(1). When only
/// rooms with members are left, a room over the byte budget gives up its own oldest messages.
///
/// Ids are `<epoch>/<sequence>`: the epoch is random per process start, so an id from before a restart is recognised
/// as unknown (a gap), never confused with a new message.
package final class InMemoryRoomHistory: RoomOccupancyObserver, Sendable {
    private struct Room {
        // Grows as messages come (the default capacity, 16, would cost ~1.5 KiB for every room joined and empty).
        var messages = CircularBuffer<RoomMessage>(initialCapacity: 1)
        var bytes = 0
        var nextSequence: UInt64 = 1
        /// Sockets of this node in the room.
        var members = 0
        /// In the list of rooms without members (least recently vacated first), and its links there.
        var isListedEmpty = false
        var previousEmpty: String?
        var nextEmpty: String?
    }

    private struct State {
        var rooms: [String: Room] = [:]
        var bytes = 0
        var firstEmpty: String?
        var lastEmpty: String?
        var evicted = 0
    }

    let limits: RoomHistoryLimits
    private let counters: ChatCounters?
    private let epoch: String
    private let clock: @Sendable () -> Int64
    private let state = NIOLockedValueBox(State())

    /// - Parameters:
    ///   - limits: Messages per room, age, rooms and bytes.
    ///   - clock: Milliseconds since 1970, for the messages' timestamps and their age.
    package init(
        limits: RoomHistoryLimits = .init(),
        counters: ChatCounters? = nil,
        clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.limits = limits
        self.counters = counters
        self.clock = clock
        self.epoch = String(UInt32.random(in: 0x1000_0000...UInt32.max), radix: 36)
    }

    /// Rooms whose history was dropped to stay within the limits, since start.
    var evictedRooms: Int { self.state.withLockedValue { $0.evicted } }

    /// The message bytes kept now, over all rooms.
    var bytes: Int { self.state.withLockedValue { $0.bytes } }

    /// Appends without suspending (the store is in memory); `then` runs under the lock with the stored message, so
    /// publishing there keeps every subscriber's order equal to id order.
    @discardableResult
    func appendNow(
        room name: String, nick: String, user: String? = nil, text: String, then: (RoomMessage) -> Void
    ) -> RoomMessage {
        let now = self.clock()
        return self.state.withLockedValue { state in
            let isNew = state.rooms[name] == nil
            var room = state.rooms.removeValue(forKey: name) ?? Room()
            let message = RoomMessage(
                room: name, id: "\(self.epoch)/\(room.nextSequence)", ts: now, nick: nick, user: user, text: text)
            room.nextSequence += 1
            room.messages.append(message)
            room.bytes += Self.size(of: message)
            state.bytes += Self.size(of: message)
            while room.messages.count > self.limits.messagesPerRoom { Self.dropOldest(&room, &state) }
            self.dropExpired(&room, &state, now: now)
            state.rooms[name] = room
            // A message for a room nobody here is in (its last member left while the message was on its way):
            // kept, and first in line for eviction with the other empty rooms.
            if isNew { Self.linkEmpty(name, &state) }
            self.enforceLimits(&state, appendingTo: name, now: now)
            then(message)
            return message
        }
    }

    func history(of name: String, since: String?, limit: Int) -> HistoryPage {
        let now = self.clock()
        return self.state.withLockedValue { state in
            guard var room = state.rooms.removeValue(forKey: name) else {
                // An empty room: nothing was missed unless the client saw messages we no longer know.
                return HistoryPage(messages: [], gap: since != nil)
            }
            self.dropExpired(&room, &state, now: now)
            state.rooms[name] = room
            let recent = Array(room.messages.suffix(self.limits.shownOnJoin))
            guard let since else { return HistoryPage(messages: recent, gap: false) }
            guard let index = room.messages.firstIndex(where: { $0.id == since }) else {
                // Not in the window: too old, from another epoch (a restart), or made up.
                return HistoryPage(messages: recent, gap: true)
            }
            let rest = room.messages[room.messages.index(after: index)...]
            return HistoryPage(messages: Array(rest.prefix(limit)), gap: false, more: rest.count > limit)
        }
    }

    // MARK: Occupancy

    package func roomOccupied(_ name: String) {
        self.state.withLockedValue { state in
            var room = state.rooms.removeValue(forKey: name) ?? Room()
            if room.isListedEmpty { Self.unlinkEmpty(name, &room, &state) }
            room.members += 1
            state.rooms[name] = room
        }
    }

    package func roomVacated(_ name: String) {
        self.state.withLockedValue { state in
            guard var room = state.rooms[name], room.members > 0 else { return }
            room.members -= 1
            state.rooms[name] = room
            guard room.members == 0 else { return }
            if room.messages.isEmpty {
                // Nothing to keep for a room without members or messages.
                state.rooms[name] = nil
            } else {
                // The most recently vacated room goes last in line for eviction.
                Self.linkEmpty(name, &state)
            }
        }
    }

    // MARK: Limits

    /// Evicts empty rooms, least recently vacated first, while the rooms or bytes are over their limits, and one
    /// empty room whose messages all expired; then trims the room appended to if it alone is over the byte budget.
    private func enforceLimits(_ state: inout State, appendingTo current: String, now: Int64) {
        while state.rooms.count > self.limits.maxRooms || state.bytes > self.limits.maxBytes,
            let oldest = Self.firstEvictable(state, sparing: current)
        {
            self.evict(oldest, &state)
        }
        if let oldest = Self.firstEvictable(state, sparing: current), let room = state.rooms[oldest],
            (room.messages.last?.ts ?? 0) < now - self.limits.maxAgeMilliseconds
        {
            self.evict(oldest, &state)
        }
        if state.bytes > self.limits.maxBytes, var room = state.rooms.removeValue(forKey: current) {
            while state.bytes > self.limits.maxBytes, room.messages.count > 1 { Self.dropOldest(&room, &state) }
            state.rooms[current] = room
        }
    }

    /// The empty room vacated longest ago, other than `current`.
    private static func firstEvictable(_ state: State, sparing current: String) -> String? {
        guard let first = state.firstEmpty else { return nil }
        return first != current ? first : state.rooms[first]?.nextEmpty
    }

    private func evict(_ name: String, _ state: inout State) {
        guard var room = state.rooms.removeValue(forKey: name) else { return }
        Self.unlinkEmpty(name, &room, &state)
        state.bytes -= room.bytes
        state.evicted += 1
        self.counters?.count(.historyEvicted)
    }

    private func dropExpired(_ room: inout Room, _ state: inout State, now: Int64) {
        let oldestKept = now - self.limits.maxAgeMilliseconds
        while let first = room.messages.first, first.ts < oldestKept { Self.dropOldest(&room, &state) }
    }

    private static func dropOldest(_ room: inout Room, _ state: inout State) {
        guard let dropped = room.messages.popFirst() else { return }
        room.bytes -= Self.size(of: dropped)
        state.bytes -= Self.size(of: dropped)
    }

    /// Puts `name` (stored, without members) last in the list of empty rooms.
    private static func linkEmpty(_ name: String, _ state: inout State) {
        guard var room = state.rooms[name], !room.isListedEmpty else { return }
        room.isListedEmpty = true
        room.previousEmpty = state.lastEmpty
        room.nextEmpty = nil
        state.rooms[name] = room
        if let last = state.lastEmpty { state.rooms[last]?.nextEmpty = name } else { state.firstEmpty = name }
        state.lastEmpty = name
    }

    /// Takes `name` out of the list of empty rooms; `room` is its record, taken out of `state.rooms`.
    private static func unlinkEmpty(_ name: String, _ room: inout Room, _ state: inout State) {
        guard room.isListedEmpty else { return }
        if let previous = room.previousEmpty { state.rooms[previous]?.nextEmpty = room.nextEmpty }
        if let next = room.nextEmpty { state.rooms[next]?.previousEmpty = room.previousEmpty }
        if state.firstEmpty == name { state.firstEmpty = room.nextEmpty }
        if state.lastEmpty == name { state.lastEmpty = room.previousEmpty }
        room.isListedEmpty = false
        room.previousEmpty = nil
        room.nextEmpty = nil
    }

    /// What a message costs in memory, near enough: its strings and the fixed part of its record.
    private static func size(of message: RoomMessage) -> Int {
        message.text.utf8.count + message.nick.utf8.count + message.id.utf8.count + message.room.utf8.count + 96
    }
}
