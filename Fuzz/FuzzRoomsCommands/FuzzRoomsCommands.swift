import Foundation
import NIOCore
import SwitchboardAuth

@testable import SwitchboardRooms

/// A `/ws` client's frames through the rooms session machine, as the socket's adapter feeds them: each line of the
/// input is one frame. Besides not crashing, every frame the machine sends must encode as JSON, a session never
/// joins more rooms than the limit allows, and after its close it holds no room in the registry.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRoomsCommands(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let data = Data(bytes: start, count: count)
    var configuration = RoomsConfiguration()
    configuration.rateLimits = .unlimited
    var machine = RoomSessionMachine(
        settings: .init(configuration), memberID: "fuzz-1", now: 0)
    let directory = CountingDirectory()
    var actions = machine.handle(.opened(preset: nil), now: 0, directory: directory)
    for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
        actions += machine.handle(
            .received(ByteBuffer(bytes: line), isText: true), now: UInt64(index) * 1_000_000, directory: directory)
        // Joins go ahead as if every store answered at once.
        for case .reserve(let room, let attempt) in actions {
            actions += machine.handle(
                .reserved(room: room, attempt: attempt, .success(())), now: 0, directory: directory)
        }
        for case .send(let frame) in actions {
            guard (try? JSONEncoder().encode(frame)) != nil else { fatalError("a frame that does not encode") }
        }
        actions = []
    }
    if directory.rooms.value > configuration.limits.maxRoomsPerSocket { fatalError("more rooms than allowed") }
    _ = machine.handle(.closed, now: 0, directory: directory)
    if directory.rooms.value != 0 { fatalError("rooms still counted after the close: \(directory.rooms.value)") }
    return 0
}

/// Counts what the session holds in the registry.
private final class CountingDirectory: RoomSessionDirectory {
    final class Count {
        var value = 0
    }

    let rooms = Count()

    func admit(user: String, now: UInt64) -> Bool { true }
    func release(user: String) {}
    func enter(room: String, user: String?) -> RoomEntryRefusal? {
        self.rooms.value += 1
        return nil
    }
    func leave(room: String) { self.rooms.value -= 1 }
    func takeMessage(of user: String?, now: UInt64) -> (what: String, wait: UInt64)? { nil }
}
