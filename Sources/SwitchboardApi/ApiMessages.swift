import NIOCore
import SwitchboardJSON
import SwitchboardRooms

/// The bodies of the server API's requests and answers (docs/openapi.json is their schema).

/// `POST /api/v1/publish`, and each `publish` of a batch: `channel` or `channels`, and `data`. Read from the
/// checked JSON text rather than decoded: `data` keeps the bytes it was sent as.
struct PublishRequest {
    var channel: String?
    var channels: [String]?
    /// The message: a string `data`'s text, or any other `data`'s JSON exactly as sent.
    var message: ByteBuffer
    /// `data` is the empty string (refused: a message is not empty).
    var isEmptyText: Bool

    /// `channel`, then `channels`.
    var allChannels: [String] { (self.channel.map { [$0] } ?? []) + (self.channels ?? []) }

    /// Reads the object at `value` of `text`; `path` names it in errors (`commands[3].publish`, or empty).
    init(_ text: JSONText, at value: Range<Int>, path: String) throws(ApiError) {
        let fields = try JSONFields(text, at: value, path: path, known: ["channel", "channels", "data"])
        self.channel = try fields.string("channel")
        self.channels = try fields.strings("channels")
        let data = try fields.required("data")
        if text.kind(of: data) == .string {
            let string = text.string(at: data)
            self.message = ByteBuffer(string: string)
            self.isEmptyText = string.isEmpty
        } else {
            self.message = ByteBuffer(bytes: text.bytes[data])
            self.isEmptyText = false
        }
    }
}

/// The answer to a publish: how many channels it went to.
struct PublishReply: Codable, Equatable {
    var published: Int
}

/// The answer to a batch: one reply per command, in order; a command that failed has an `error` and the others
/// still ran.
struct BatchReply: Codable, Equatable {
    struct Item: Codable, Equatable {
        var published: Int?
        var error: ErrorBody.Detail?
    }

    var replies: [Item]
}

/// `GET /api/v1/rooms/{room}/history`.
struct HistoryReply: Encodable {
    var room: String
    var messages: [RoomMessage]
    /// `since` is no longer in the history: `messages` are the recent ones instead.
    var gap: Bool
    /// More messages follow the last one.
    var more: Bool
}

/// `GET /api/v1/rooms/{room}/presence`.
struct PresenceReply: Encodable {
    var room: String
    /// One per socket in the room, on every node.
    var members: [PresenceMember]
    /// The members with a user id, one entry per user with their socket count.
    var users: [PresenceUser]
}

/// `GET /api/v1/channels`.
struct ChannelsReply: Encodable {
    struct Channel: Encodable {
        var channel: String
        /// Sockets subscribed, over every node that answered.
        var subscribers: Int
    }

    var channels: [Channel]
    /// Nodes that answered.
    var nodes: Int
    /// Some node did not answer within the deadline: the counts are of those that did.
    var partial: Bool
}

/// `GET /api/v1/info`.
struct InfoReply: Encodable {
    var nodes: [NodeInfo]
    var partial: Bool
}

/// `POST /api/v1/users/{id}/disconnect`; both optional.
struct DisconnectRequest: Decodable {
    /// 1000 or 3000–4999; 4000 by default.
    var code: UInt16?
    /// Cut to 123 bytes of UTF-8.
    var reason: String?

    init() {}

    private enum CodingKeys: String, CodingKey { case code, reason }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        self.code = try container.decodeUnlessAbsent(UInt16.self, forKey: .code)
        self.reason = try container.decodeUnlessAbsent(String.self, forKey: .reason)
    }
}

/// `POST /api/v1/users/{id}/unsubscribe`.
struct UnsubscribeRequest: Decodable {
    var room: String
}

/// The answer to disconnect and unsubscribe: sockets acted on, over every node that answered.
struct UserActionReply: Encodable {
    var disconnected: Int?
    var unsubscribed: Int?
    var nodes: Int
    var partial: Bool
}

extension KeyedDecodingContainer {
    /// The value of an optional field: `nil` when the key is absent, an error when it is `null` (the schema says
    /// absent or a value; `decodeIfPresent` would take `null` for absent).
    func decodeUnlessAbsent<Value: Decodable>(_ type: Value.Type, forKey key: Key) throws -> Value? {
        guard self.contains(key) else { return nil }
        return try self.decode(type, forKey: key)
    }
}
