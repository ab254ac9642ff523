import FoundationEssentials
import NIOConcurrencyHelpers
import NIOCore

/// The embedded history: the last messages of each room, in this process's memory, bounded in messages per room,
/// age, rooms and bytes (``RoomHistoryLimits``), and fair between clients.
///
/// Every message is charged to the client that wrote it (its user, else its address, else its socket). Bytes are
/// bounded three ways, each taking from the front of a room (its oldest messages), so a room's history is always a
/// contiguous window and catch-up stays exact (or says `gap`):
/// - a room over ``RoomHistoryLimits/maxBytesPerRoom`` gives up its own oldest messages;
/// - a client over ``RoomHistoryLimits/maxBytesPerClient`` has the rooms it wrote most in give up theirs;
/// - over ``RoomHistoryLimits/maxBytes`` in all, the largest writer's rooms go first, then the next largest.
/// Trimming a room for a writer never takes it below ``RoomHistoryLimits/shownOnJoin`` messages when the message to
/// go is someone else's: one client can only erase what it wrote, or what was written where it writes (as a room's
/// message limit always does). A room with members keeps its newest message, so the budget can be exceeded by one
/// message per such room (bounded by ``RoomHistoryLimits/maxRooms`` and the rooms a client may create).
///
/// When the rooms run out, the history that goes is that of the room nobody has been in for longest: rooms with
/// members on this node (told through ``RoomOccupancyObserver``) are never evicted for the room count.
///
/// Ids are `<epoch>/<sequence>`: the epoch is random per process start, so an id from before a restart is recognised
/// as unknown (a gap), never confused with a new message.
package final class InMemoryRoomHistory: RoomOccupancyObserver, Sendable {
    private struct Entry {
        var message: RoomMessage
        /// Who the message is charged to.
        var writer: String
        var size: Int
    }

    private struct Room {
        // Grows as messages come (the default capacity, 16, would cost ~1.5 KiB for every room joined and empty).
        var entries = CircularBuffer<Entry>(initialCapacity: 1)
        var bytes = 0
        var nextSequence: UInt64 = 1
        /// Sockets of this node in the room.
        var members = 0
        /// In the list of rooms without members (least recently vacated first), and its links there.
        var isListedEmpty = false
        var previousEmpty: String?
        var nextEmpty: String?
    }

    /// A writer's messages kept: bytes in all and by room.
    private struct Writer {
        var bytes = 0
        var rooms: [String: Int] = [:]
    }

    private struct State {
        var rooms: [String: Room] = [:]
        var writers: [String: Writer] = [:]
        var bytes = 0
        var firstEmpty: String?
        var lastEmpty: String?
        var evicted = 0
        var trimmedForWriters = 0
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

    /// Messages dropped to keep writers within their share, since start.
    var trimmedForWriters: Int { self.state.withLockedValue { $0.trimmedForWriters } }

    /// The bytes kept for `writer`'s messages.
    func bytes(of writer: String) -> Int { self.state.withLockedValue { $0.writers[writer]?.bytes ?? 0 } }

    /// Appends without suspending (the store is in memory); `then` runs under the lock with the stored message, so
    /// publishing there keeps every subscriber's order equal to id order.
    ///
    /// - Parameter writer: Who the message is charged to (``ClientID``'s description); `""` for no one in particular.
    @discardableResult
    func appendNow(
        room name: String, nick: String, user: String? = nil, writer: String = "", text: String,
        then: (RoomMessage) -> Void
    ) -> RoomMessage {
        let now = self.clock()
        return self.state.withLockedValue { state in
            let isNew = state.rooms[name] == nil
            if isNew { state.rooms[name] = Room() }
            let sequence = state.rooms[name]!.nextSequence
            let message = RoomMessage(
                room: name, id: "\(self.epoch)/\(sequence)", ts: now, nick: nick, user: user, text: text)
            let entry = Entry(message: message, writer: writer, size: Self.size(of: message))
            state.rooms[name]!.nextSequence += 1
            state.rooms[name]!.entries.append(entry)
            state.rooms[name]!.bytes += entry.size
            state.bytes += entry.size
            state.writers[writer, default: Writer()].bytes += entry.size
            state.writers[writer]!.rooms[name, default: 0] += entry.size
            while let room = state.rooms[name],
                room.entries.count > self.limits.messagesPerRoom
                    || (room.bytes > self.limits.maxBytesPerRoom && room.entries.count > 1)
            {
                Self.dropOldest(in: name, &state)
            }
            self.dropExpired(in: name, &state, now: now)
            // A message for a room nobody here is in (its last member left while the message was on its way):
            // kept, and first in line for eviction with the other empty rooms.
            if isNew { Self.linkEmpty(name, &state) }
            self.enforceLimits(&state, appendingTo: name, by: writer, now: now)
            then(message)
            return message
        }
    }

    func history(of name: String, since: String?, limit: Int) -> HistoryPage {
        let now = self.clock()
        return self.state.withLockedValue { state in
            guard state.rooms[name] != nil else {
                // An empty room: nothing was missed unless the client saw messages we no longer know.
                return HistoryPage(messages: [], gap: since != nil)
            }
            self.dropExpired(in: name, &state, now: now)
            let entries = state.rooms[name]!.entries
            let recent = entries.suffix(self.limits.shownOnJoin).map(\.message)
            guard let since else { return HistoryPage(messages: recent, gap: false) }
            guard let index = entries.firstIndex(where: { $0.message.id == since }) else {
                // Not in the window: too old, from another epoch (a restart), or made up.
                return HistoryPage(messages: recent, gap: true)
            }
            let rest = entries[entries.index(after: index)...]
            return HistoryPage(messages: rest.prefix(limit).map(\.message), gap: false, more: rest.count > limit)
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
            if room.entries.isEmpty {
                // Nothing to keep for a room without members or messages.
                state.rooms[name] = nil
            } else {
                // The most recently vacated room goes last in line for eviction.
                Self.linkEmpty(name, &state)
            }
        }
    }

    // MARK: Limits

    /// Evicts empty rooms, least recently vacated first, while there are too many rooms, and one empty room whose
    /// messages all expired; keeps `writer` within its share, then everyone within the byte budget.
    private func enforceLimits(_ state: inout State, appendingTo current: String, by writer: String, now: Int64) {
        while state.rooms.count > self.limits.maxRooms, let oldest = Self.firstEvictable(state, sparing: current) {
            self.evict(oldest, &state)
        }
        if let oldest = Self.firstEvictable(state, sparing: current), let room = state.rooms[oldest],
            (room.entries.last?.message.ts ?? 0) < now - self.limits.maxAgeMilliseconds
        {
            self.evict(oldest, &state)
        }
        self.trim(writer, to: self.limits.maxBytesPerClient, &state)
        guard state.bytes > self.limits.maxBytes else { return }
        // Down to 15/16 of the budget, so that the writers are sorted once per sixteenth of it, not per message.
        let target = self.limits.maxBytes - self.limits.maxBytes / 16
        let largestFirst = state.writers.map { ($0.key, $0.value.bytes) }.sorted { $0.1 > $1.1 }
        for (largest, _) in largestFirst where state.bytes > target {
            self.trim(largest, to: max(0, (state.writers[largest]?.bytes ?? 0) - (state.bytes - target)), &state)
        }
    }

    /// Drops the oldest messages of the rooms `writer` wrote most in until it holds at most `limit` bytes; a room is
    /// not taken below ``RoomHistoryLimits/shownOnJoin`` messages to drop someone else's. A room with members keeps
    /// its newest message (its members can catch up from it); one without goes when its last message does.
    private func trim(_ writer: String, to limit: Int, _ state: inout State) {
        guard let bytes = state.writers[writer]?.bytes, bytes > limit else { return }
        let rooms = state.writers[writer]!.rooms.sorted { $0.value > $1.value }.map(\.key)
        for name in rooms {
            while (state.writers[writer]?.bytes ?? 0) > limit, let room = state.rooms[name],
                let oldest = room.entries.first, state.writers[writer]?.rooms[name] != nil
            {
                if oldest.writer != writer, room.entries.count <= self.limits.shownOnJoin { break }
                if room.entries.count == 1 {
                    if room.members == 0 { self.evict(name, &state) }
                    break
                }
                Self.dropOldest(in: name, &state)
                state.trimmedForWriters += 1
            }
        }
    }

    /// The empty room vacated longest ago, other than `current`.
    private static func firstEvictable(_ state: State, sparing current: String) -> String? {
        guard let first = state.firstEmpty else { return nil }
        return first != current ? first : state.rooms[first]?.nextEmpty
    }

    private func evict(_ name: String, _ state: inout State) {
        guard var room = state.rooms[name] else { return }
        Self.unlinkEmpty(name, &room, &state)
        state.rooms[name] = room
        while state.rooms[name]?.entries.isEmpty == false { Self.dropOldest(in: name, &state) }
        state.rooms[name] = nil
        state.evicted += 1
        self.counters?.count(.historyEvicted)
    }

    private func dropExpired(in name: String, _ state: inout State, now: Int64) {
        let oldestKept = now - self.limits.maxAgeMilliseconds
        while let first = state.rooms[name]?.entries.first, first.message.ts < oldestKept {
            Self.dropOldest(in: name, &state)
        }
    }

    /// Drops the oldest message of room `name`, uncharging its writer.
    private static func dropOldest(in name: String, _ state: inout State) {
        guard let dropped = state.rooms[name]?.entries.popFirst() else { return }
        state.rooms[name]!.bytes -= dropped.size
        state.bytes -= dropped.size
        guard var writer = state.writers.removeValue(forKey: dropped.writer) else { return }
        writer.bytes -= dropped.size
        let left = (writer.rooms[name] ?? 0) - dropped.size
        writer.rooms[name] = left > 0 ? left : nil
        if writer.bytes > 0 { state.writers[dropped.writer] = writer }
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
