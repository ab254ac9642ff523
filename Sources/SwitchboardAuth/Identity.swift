public import FoundationEssentials

/// Who a connection is, as the server knows it from a verified token: never what the client says it is.
public struct Identity: Sendable, Hashable {
    /// The user's id: the token's `sub`. One user may have many connections.
    public var userID: String
    /// What others see: the token's `name` claim, else the user id.
    public var name: String
    /// Patterns of the members-only rooms this user may join (the token's `rooms` claim).
    public var rooms: [ChannelPattern]
    /// When the token expires (`exp`); `nil` for a token without one, which never does.
    public var expiresAt: Date?

    /// Creates an identity.
    public init(userID: String, name: String, rooms: [ChannelPattern] = [], expiresAt: Date? = nil) {
        self.userID = userID
        self.name = name
        self.rooms = rooms
        self.expiresAt = expiresAt
    }

    /// Whether `rooms` admits `room`.
    public func mayJoin(_ room: String) -> Bool {
        self.rooms.contains { $0.matches(room) }
    }
}

/// Checks for the user ids and names that tokens carry: ids are what channel names embed (`user:<id>`), names are
/// shown to others.
public enum IdentityNames {
    /// 1 to 128 bytes of ASCII letters, digits and `-_.@|`: safe inside a channel name and a log line.
    public static func isValidUserID(_ id: String) -> Bool {
        guard !id.isEmpty, id.utf8.count <= 128 else { return false }
        return id.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "@"), UInt8(ascii: "|"):
                true
            default:
                false
            }
        }
    }
}
