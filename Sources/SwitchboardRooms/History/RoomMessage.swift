import FoundationEssentials
package import NIOCore

/// A chat message as stored in a room's history and sent to clients (docs/PROTOCOL.md, `message`).
///
/// Its JSON is defined here only: ``json()`` is what clients receive and the embedded history publishes, and
/// ``jsonAroundID()`` gives a store that assigns ids itself (Redis, in a Lua script) the same bytes to put the id
/// into, so no second definition of the format exists elsewhere.
package struct RoomMessage: Codable, Equatable, Sendable {
    package var type = "message"
    /// The room.
    package var room: String
    /// The room's ordering key, `<epoch>/<position>`.
    package var id: String
    /// Milliseconds since 1970.
    package var ts: Int64
    /// The sender's nickname, or with a token the name it carries.
    package var nick: String
    /// The sender's user id, proven by a token; absent for anonymous senders.
    package var user: String?
    /// The text.
    package var text: String

    package init(room: String, id: String, ts: Int64, nick: String, user: String? = nil, text: String) {
        self.room = room
        self.id = id
        self.ts = ts
        self.nick = nick
        self.user = user
        self.text = text
    }

    /// The message's JSON (keys sorted, so the bytes are stable).
    package func json() throws -> ByteBuffer {
        ByteBuffer(bytes: try Self.encoder.encode(self))
    }

    /// The message's JSON without its id, split where the id goes: `head + id + tail` is ``json()`` for that id,
    /// and `head + tail` is the JSON with an empty id (what a store keeps when the id is its own key).
    package func jsonAroundID() throws -> (head: ByteBuffer, tail: ByteBuffer) {
        var message = self
        message.id = ""
        let bytes = try Self.encoder.encode(message)
        // Quotes inside string values are escaped, so an unescaped `"id":""` is the key itself.
        let marker = Array(#""id":"""#.utf8)
        guard let start = bytes.firstRange(of: marker) else {
            throw EncodingError.invalidValue(self, .init(codingPath: [], debugDescription: "no id in the JSON"))
        }
        // Split between the id's two quotes.
        let split = start.upperBound - 1
        return (ByteBuffer(bytes: bytes[..<split]), ByteBuffer(bytes: bytes[split...]))
    }

    /// Decodes a message stored with an empty id (see ``jsonAroundID()``) and gives it `id`.
    package static func decode(storedJSON: ByteBuffer, id: String) throws -> RoomMessage {
        var message = try JSONDecoder().decode(RoomMessage.self, from: Data(storedJSON.readableBytesView))
        message.id = id
        return message
    }

    private static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        // Slashes unescaped: ids contain one, and a store that puts the id between head and tail writes it as is.
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()
}
