import Foundation
import SwitchboardAuth

@testable import SwitchboardChat

/// A `/ws` client's command frames: the JSON a socket sends, decoded as the session decodes it, then the checks each
/// command's fields go through (room names, nicknames with their Unicode rules, `since` ids, text length).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRoomsCommands(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    guard let frame = try? decoder.decode(ClientFrame.self, from: data) else { return 0 }
    if let room = frame.room { _ = ChatNames.isValidRoom(room) }
    if let nick = frame.nick, let normalized = DisplayName.normalized(nick) {
        // Normalizing is idempotent: what was accepted is accepted again, unchanged.
        guard DisplayName.normalized(normalized) == normalized else { fatalError("nickname normalization moved") }
    }
    if let since = frame.since {
        _ = RoomMessageID.split(since)
        _ = RoomMessageID.isAfter(since, "epoch/1-0")
    }
    if let text = frame.text { _ = text.count <= 4000 }
    return 0
}

private let decoder = JSONDecoder()
