import Foundation
import NIOCore
import SwitchboardRooms
import Testing

@Suite("Room messages: one JSON definition, ids")
struct RoomMessageTests {
    @Test("The JSON around the id, joined with an id, is the message's JSON; stored without the id, it decodes back")
    func jsonAroundID() throws {
        let message = RoomMessage(
            room: "lobby", id: "k2x/42", ts: 1_700_000_000_123, nick: #"al"i\ce"#, text: #"say "id":"" and </script>"#)
        let (head, tail) = try message.jsonAroundID()
        var joined = head
        joined.writeString("k2x/42")
        joined.writeImmutableBuffer(tail)
        #expect(String(buffer: joined) == String(buffer: try message.json()))
        var stored = head
        stored.writeImmutableBuffer(tail)
        #expect(try RoomMessage.decode(storedJSON: stored, id: "k2x/42") == message)
        // The wire format: sorted keys, every field.
        let object = try #require(
            try JSONSerialization.jsonObject(with: Data(joined.readableBytesView)) as? [String: Any])
        #expect(Set(object.keys) == ["type", "room", "id", "ts", "nick", "text"])
        #expect(object["type"] as? String == "message")
    }

    @Test(
        "The hand-written JSON is JSONEncoder's (sorted keys, slashes as they are), byte for byte, for every character")
    func sameBytesAsJSONEncoder() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let ascii = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self)
        let texts = [
            "", ascii, "héllo wörld", "日本語", "🙂 and 👩‍👩‍👧", "\u{2028}\u{2029}", #"a "quoted" \ back/slash"#,
            "\u{7F}\u{80}\u{FFFD}", String(repeating: "x", count: 5000),
        ]
        for (n, text) in texts.enumerated() {
            for user: String? in [nil, "user-\(text.prefix(8))"] {
                let message = RoomMessage(
                    room: "room \(text.prefix(3))", id: "e\(n)/\(n * 7)",
                    ts: n == 0 ? -1 : 1_796_650_000_000 + Int64(n),
                    nick: String(text.suffix(5)), user: user, text: text)
                let expected = try encoder.encode(message)
                #expect(
                    Array(try message.json().readableBytesView) == Array(expected), "text \(n), user \(user ?? "-")")
                let (head, tail) = try message.jsonAroundID()
                var joined = head
                joined.writeString(message.id)
                joined.writeImmutableBuffer(tail)
                #expect(joined == (try message.json()))
            }
        }
    }
}
