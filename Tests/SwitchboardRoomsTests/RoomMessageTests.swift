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
}
