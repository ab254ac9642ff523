/// How much room history is kept, and for how long (Centrifugo's `history_size` and `history_ttl`: both bound it).
package struct RoomHistoryLimits: Sendable, Equatable {
    /// Messages kept per room for catch-up.
    package var messagesPerRoom: Int
    /// How long a message is kept; older ones are neither kept nor sent (a client asking for them gets a gap).
    /// With Redis, a room's stream expires this long after its last message.
    package var maxAgeMilliseconds: Int64
    /// Messages sent on a join without `since`, or with a gap.
    package var shownOnJoin: Int
    /// Embedded history: the most rooms whose history is kept in this process.
    package var maxRooms: Int
    /// Embedded history: the most message bytes kept in this process, over all rooms.
    package var maxBytes: Int
    /// Embedded history: the most message bytes of one room (an eighth of ``maxBytes`` by default).
    package var maxBytesPerRoom: Int
    /// Embedded history: the most message bytes one client's messages may hold over all rooms (a sixteenth of
    /// ``maxBytes`` by default); past it the rooms it wrote most in give up their oldest messages.
    package var maxBytesPerClient: Int

    package init(
        messagesPerRoom: Int = 1000,
        maxAgeMilliseconds: Int64 = 24 * 3600 * 1000,
        shownOnJoin: Int = 100,
        maxRooms: Int = 10_000,
        maxBytes: Int = 256 * 1024 * 1024,
        maxBytesPerRoom: Int? = nil,
        maxBytesPerClient: Int? = nil
    ) {
        self.messagesPerRoom = messagesPerRoom
        self.maxAgeMilliseconds = maxAgeMilliseconds
        self.shownOnJoin = min(shownOnJoin, messagesPerRoom)
        self.maxRooms = maxRooms
        self.maxBytes = maxBytes
        self.maxBytesPerRoom = maxBytesPerRoom ?? max(maxBytes / 8, 1)
        self.maxBytesPerClient = maxBytesPerClient ?? max(maxBytes / 16, 1)
    }
}
