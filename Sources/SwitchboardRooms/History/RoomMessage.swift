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

    /// The message's JSON (keys sorted, so the bytes are stable): the bytes `JSONEncoder` makes with `.sortedKeys`
    /// and `.withoutEscapingSlashes` (a test holds the two equal), written by hand because the encoder was a fifth
    /// of the CPU of a room message stored through Redis.
    package func json() throws -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(self.estimatedSize)
        buffer.writeStaticString(#"{"id":""#)
        Self.writeEscaped(self.id, into: &buffer)
        self.writeAfterID(into: &buffer)
        return buffer
    }

    /// The message's JSON without its id, split where the id goes: `head + id + tail` is ``json()`` for that id,
    /// and `head + tail` is the JSON with an empty id (what a store keeps when the id is its own key).
    package func jsonAroundID() throws -> (head: ByteBuffer, tail: ByteBuffer) {
        var tail = ByteBuffer()
        tail.reserveCapacity(self.estimatedSize)
        self.writeAfterID(into: &tail)
        return (Self.head, tail)
    }

    /// `{"id":"`: the keys are sorted, so the id comes first.
    private static let head = ByteBuffer(string: #"{"id":""#)

    private var estimatedSize: Int {
        64 + self.id.utf8.count + self.nick.utf8.count + self.room.utf8.count + self.text.utf8.count
            + (self.user?.utf8.count ?? 0)
    }

    /// Everything after the id's value: its closing quote, then the other keys in order.
    private func writeAfterID(into buffer: inout ByteBuffer) {
        buffer.writeStaticString(#"","nick":""#)
        Self.writeEscaped(self.nick, into: &buffer)
        buffer.writeStaticString(#"","room":""#)
        Self.writeEscaped(self.room, into: &buffer)
        buffer.writeStaticString(#"","text":""#)
        Self.writeEscaped(self.text, into: &buffer)
        buffer.writeStaticString(#"","ts":"#)
        buffer.writeString(String(self.ts))
        buffer.writeStaticString(#","type":""#)
        Self.writeEscaped(self.type, into: &buffer)
        if let user = self.user {
            buffer.writeStaticString(#"","user":""#)
            Self.writeEscaped(user, into: &buffer)
        }
        buffer.writeStaticString(#""}"#)
    }

    /// A string's content as JSONEncoder writes it: `"` and `\` escaped, control characters as `\n`-style escapes
    /// or `\u00XX`, everything else (slashes and non-ASCII included) as it is.
    private static func writeEscaped(_ string: String, into buffer: inout ByteBuffer) {
        var string = string
        string.withUTF8 { bytes in
            var start = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[start..<index]))
                start = index + 1
                switch byte {
                case UInt8(ascii: "\""): buffer.writeStaticString(#"\""#)
                case UInt8(ascii: "\\"): buffer.writeStaticString(#"\\"#)
                case 0x08: buffer.writeStaticString(#"\b"#)
                case 0x09: buffer.writeStaticString(#"\t"#)
                case 0x0A: buffer.writeStaticString(#"\n"#)
                case 0x0C: buffer.writeStaticString(#"\f"#)
                case 0x0D: buffer.writeStaticString(#"\r"#)
                default:
                    let hex = Array("0123456789abcdef".utf8)
                    buffer.writeStaticString(#"\u00"#)
                    buffer.writeBytes([hex[Int(byte >> 4)], hex[Int(byte & 0xF)]])
                }
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[start..<bytes.count]))
        }
    }

    /// Decodes a message stored with an empty id (see ``jsonAroundID()``) and gives it `id`.
    package static func decode(storedJSON: ByteBuffer, id: String) throws -> RoomMessage {
        var message = try JSONDecoder().decode(RoomMessage.self, from: Data(storedJSON.readableBytesView))
        message.id = id
        return message
    }

}
