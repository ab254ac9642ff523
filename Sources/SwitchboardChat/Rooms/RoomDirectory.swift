import NIOConcurrencyHelpers

/// Told when a room gets its first member on this node and when its last one leaves.
protocol RoomOccupancyObserver: Sendable {
    func roomOccupied(_ room: String)
    func roomVacated(_ room: String)
}

/// The rooms with members on this node, and the cap on how many there may be.
///
/// A socket enters a room when it asks to join it and leaves when it leaves, fails to join or closes; a join that
/// would add a room past ``maxRooms`` is refused (`rooms_full`). The embedded history observes it, so it never
/// evicts a room with members.
final class RoomDirectory: Sendable {
    let maxRooms: Int
    private let observer: (any RoomOccupancyObserver)?
    private let members = NIOLockedValueBox<[String: Int]>([:])

    init(maxRooms: Int, observer: (any RoomOccupancyObserver)?) {
        self.maxRooms = maxRooms
        self.observer = observer
    }

    /// Rooms with members now.
    var roomCount: Int { self.members.withLockedValue { $0.count } }

    /// Counts a socket into `room`; `false` (and nothing counted) if that would make more than ``maxRooms``.
    func enter(_ room: String) -> Bool {
        self.members.withLockedValue { members in
            let count = members[room] ?? 0
            guard count > 0 || members.count < self.maxRooms else { return false }
            members[room] = count + 1
            // Under the lock, so the observer sees a room's first entry and last leave in order.
            if count == 0 { self.observer?.roomOccupied(room) }
            return true
        }
    }

    /// Counts a socket out of `room`, which it entered.
    func leave(_ room: String) {
        self.members.withLockedValue { members in
            guard let count = members[room] else { return }
            if count > 1 {
                members[room] = count - 1
            } else {
                members[room] = nil
                self.observer?.roomVacated(room)
            }
        }
    }
}
