import FoundationEssentials
import NIOConcurrencyHelpers

/// The embedded history: a bounded ring of the last messages per room, in this process's memory.
///
/// Ids are `<epoch>/<sequence>`: the epoch is random per process start, so an id from before a restart is recognised
/// as unknown (a gap), never confused with a new message.
final class InMemoryRoomHistory: Sendable {
    private struct Room {
        var messages: [RoomMessage] = []
        var start = 0  // ring start index once full
        var nextSequence: UInt64 = 1
        var lastUsed: UInt64 = 0
    }

    private let capacity: Int
    private let shownOnJoin: Int
    private let maxRooms: Int
    private let epoch: String
    private let clock: @Sendable () -> Int64
    private let state = NIOLockedValueBox<(rooms: [String: Room], tick: UInt64)>(([:], 0))

    /// - Parameters:
    ///   - capacity: Messages kept per room for catch-up.
    ///   - shownOnJoin: Messages sent on a join without `since` (or with a gap).
    ///   - maxRooms: Rooms kept; past it, the least recently used room's history is dropped.
    ///   - clock: Milliseconds since 1970, for the messages' timestamps.
    init(
        capacity: Int = 1000,
        shownOnJoin: Int = 100,
        maxRooms: Int = 10_000,
        clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.capacity = capacity
        self.shownOnJoin = min(shownOnJoin, capacity)
        self.maxRooms = maxRooms
        self.clock = clock
        self.epoch = String(UInt32.random(in: 0x1000_0000...UInt32.max), radix: 36)
    }

    /// Appends without suspending (the store is in memory); `then` runs under the room's lock with the stored
    /// message, so publishing there keeps every subscriber's order equal to id order.
    @discardableResult
    func appendNow(room name: String, nick: String, text: String, then: (RoomMessage) -> Void) -> RoomMessage {
        self.state.withLockedValue { state in
            state.tick += 1
            var room = state.rooms[name] ?? Room()
            let message = RoomMessage(
                room: name, id: "\(self.epoch)/\(room.nextSequence)", ts: self.clock(), nick: nick, text: text)
            room.nextSequence += 1
            room.lastUsed = state.tick
            if room.messages.count < self.capacity {
                room.messages.append(message)
            } else {
                room.messages[room.start] = message
                room.start = (room.start + 1) % self.capacity
            }
            state.rooms[name] = room
            if state.rooms.count > self.maxRooms,
                let oldest = state.rooms.min(by: { $0.value.lastUsed < $1.value.lastUsed })
            {
                state.rooms[oldest.key] = nil
            }
            then(message)
            return message
        }
    }

    func history(of name: String, since: String?, limit: Int) -> HistoryPage {
        self.state.withLockedValue { state in
            guard let room = state.rooms[name] else {
                // An empty room: nothing was missed unless the client saw messages we no longer know.
                return HistoryPage(messages: [], gap: since != nil)
            }
            let ordered = Array(room.messages[room.start...] + room.messages[..<room.start])
            let recent = Array(ordered.suffix(self.shownOnJoin))
            guard let since else { return HistoryPage(messages: recent, gap: false) }
            guard let index = ordered.firstIndex(where: { $0.id == since }) else {
                // Not in the window: too old, from another epoch (a restart), or made up.
                return HistoryPage(messages: recent, gap: true)
            }
            let rest = ordered[(index + 1)...]
            return HistoryPage(messages: Array(rest.prefix(limit)), gap: false, more: rest.count > limit)
        }
    }
}
