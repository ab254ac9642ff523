import FoundationEssentials

/// One event as a webhook receiver gets it, in a batch's `events` (docs/WEBHOOKS.md).
public struct WebhookEvent: Codable, Sendable, Equatable {
    /// What happened.
    public enum Name: String, Codable, Sendable, CaseIterable {
        /// A `/ws` socket opened.
        case connect
        /// A `/ws` socket closed.
        case disconnect
        /// A room got its first member.
        case roomOccupied = "room_occupied"
        /// A room's last member left (sent after the delay, if nobody came back meanwhile).
        case roomVacated = "room_vacated"
        /// A member (a user, or an anonymous socket) joined a room.
        case memberJoined = "member_joined"
        /// A member left a room (sent after the delay, if they did not come back meanwhile).
        case memberLeft = "member_left"
        /// A message said in a room, once stored (not sent unless asked for: one POSTed event per message).
        case message

        /// The events sent unless others are asked for: all but ``message``.
        public static let defaults = Set(Self.allCases).subtracting([.message])
    }

    /// Unique per event, the same in every try: webhooks are sent at least once (a receiver that answers after the
    /// deadline gets the batch again), so a receiver that must not act twice remembers the ids it has seen.
    public var id: String
    public var name: Name
    /// The room, for room and member events.
    public var room: String?
    /// The token's user id; absent for anonymous members and sockets.
    public var user: String?
    /// The member (for member events) or socket (for connect and disconnect) id: one per socket.
    public var socket: String?
    /// The name shown for the member.
    public var nick: String?
    /// A message's text.
    public var text: String?
    /// When it happened, in milliseconds since 1970 (a delayed event keeps the time of the leave itself).
    public var time: Int64

    public init(
        name: Name, room: String? = nil, user: String? = nil, socket: String? = nil, nick: String? = nil,
        text: String? = nil, time: Int64 = WebhookEvent.now()
    ) {
        self.id = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        self.name = name
        self.room = room
        self.user = user
        self.socket = socket
        self.nick = nick
        self.text = text
        self.time = time
    }

    /// Milliseconds since 1970.
    public static func now() -> Int64 { Int64(Date().timeIntervalSince1970 * 1000) }

    /// What the event holds in memory, near enough: its strings and the fixed part of its record.
    var estimatedSize: Int {
        [self.id, self.room, self.user, self.socket, self.nick, self.text].reduce(128) { $0 + ($1?.utf8.count ?? 0) }
    }
}

/// What a webhook request's body is: `{"events":[…],"time":…}`.
struct WebhookBatch: Codable, Equatable {
    var time: Int64
    var events: [WebhookEvent]
}
