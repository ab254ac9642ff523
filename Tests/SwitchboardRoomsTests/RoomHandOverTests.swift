import NIOConcurrencyHelpers
import NIOCore
import SwitchboardWebSocket
import Testing

@testable import SwitchboardRooms

/// Payloads "m <id>" are room messages, "p <member> <event>" presence events; anything else is neither.
private func message(_ text: String) -> PreparedMessage { PreparedMessage(.text(text)) }

private func idOf(_ message: PreparedMessage) -> RoomHandOver.Kind {
    let parts = String(buffer: message.message.data).split(separator: " ")
    switch parts.first {
    case "m": return .message(id: String(parts[1]))
    case "p": return .presence(member: String(parts[1]))
    default: return .other
    }
}

private func texts(_ messages: [PreparedMessage]) -> [String] { messages.map { String(buffer: $0.message.data) } }

private func frames(_ texts: String...) -> PreparedFrames { PreparedFrames(texts.map(message), encoding: .plain) }

@Suite("Room hand-over: history, then live, each message once")
struct RoomHandOverTests {
    @Test("Held while joining; after the history, held duplicates drop, presence events and newer messages go out")
    func heldThenReleased() {
        var handOver = RoomHandOver(classify: idOf)
        #expect(handOver.received(frames("m e/2", "presence")) == nil)
        #expect(handOver.received(frames("m e/3", "m e/4")) == nil)
        guard case .send(let held) = handOver.historySent(newest: "e/3") else {
            Issue.record("expected held messages")
            return
        }
        #expect(texts(held) == ["presence", "m e/4"])
        // The first new message ends filtering: everything after is live.
        #expect(texts(handOver.received(frames("m e/5", "m e/1"))?.messages ?? []) == ["m e/5", "m e/1"])
    }

    @Test("Messages still in flight after the history are filtered until the first newer one")
    func filteringInFlight() {
        var handOver = RoomHandOver(classify: idOf)
        #expect(handOver.received(frames("m e/1")) == nil)
        guard case .send(let held) = handOver.historySent(newest: "e/3") else {
            Issue.record("expected held messages")
            return
        }
        #expect(held.isEmpty)
        #expect(handOver.received(frames("m e/2", "m e/3")) == nil, "both were in the history")
        #expect(
            texts(handOver.received(frames("presence", "m e/3", "m e/4"))?.messages ?? []) == ["presence", "m e/4"])
        guard case .live = handOver.state else {
            Issue.record("expected live, got \(handOver.state)")
            return
        }
    }

    @Test("Without any history (an empty room), everything held is new")
    func emptyHistory() {
        var handOver = RoomHandOver(classify: idOf)
        _ = handOver.received(frames("m e/1", "m e/2"))
        guard case .send(let held) = handOver.historySent(newest: nil) else {
            Issue.record("expected held messages")
            return
        }
        #expect(texts(held) == ["m e/1", "m e/2"])
    }

    @Test("An id of another epoch (the log restarted) counts as new")
    func newEpoch() {
        var handOver = RoomHandOver(classify: idOf)
        _ = handOver.historySent(newest: "old/900")
        #expect(texts(handOver.received(frames("m new/1"))?.messages ?? []) == ["m new/1"])
    }

    @Test("A gap when live: hold again and tell the client; a gap while holding: tell it once the history is out")
    func gaps() {
        var live = RoomHandOver(classify: idOf)
        _ = live.historySent(newest: nil)
        #expect(live.gapped() == .tellClient)
        #expect(live.isHolding && live.received(frames("m e/9")) == nil, "held until the client re-syncs")
        guard case .send(let held) = live.historySent(newest: "e/8") else {
            Issue.record("expected held messages")
            return
        }
        #expect(texts(held) == ["m e/9"])

        var joining = RoomHandOver(classify: idOf)
        _ = joining.received(frames("m e/1"))
        #expect(joining.gapped() == .none, "the history on its way may already lack messages: say so after it")
        guard case .gapped = joining.historySent(newest: "e/1") else {
            Issue.record("expected a gap after the history")
            return
        }
        #expect(joining.isHolding)
    }

    @Test("Presence events held while joining keep only the latest per member: a busy room cannot overflow a join")
    func presenceCoalesced() {
        var handOver = RoomHandOver(maxHeld: 3, classify: idOf)
        for n in 0..<10_000 { _ = handOver.received(frames("p a \(n % 2 == 0 ? "join" : "leave")", "p b join")) }
        _ = handOver.received(frames("m e/5"))
        guard case .send(let held) = handOver.historySent(newest: "e/4") else {
            Issue.record("expected held frames, not an overflow")
            return
        }
        #expect(texts(held) == ["p a leave", "p b join", "m e/5"])
    }

    @Test("More live messages while joining than are held: the join cannot be caught up live")
    func overflow() {
        var handOver = RoomHandOver(maxHeld: 3, classify: idOf)
        _ = handOver.received(frames("m e/1", "m e/2"))
        _ = handOver.received(frames("m e/3", "m e/4"))
        guard case .overflowed = handOver.historySent(newest: "e/0") else {
            Issue.record("expected an overflow")
            return
        }
    }
}

@Suite("Room history (embedded) and message ids")
struct RoomHistoryTests {
    @Test("A ring of the last messages: recent ones on join, exactly those after `since` a page at a time, a gap")
    func ring() async throws {
        let history = InMemoryRoomHistory(limits: .init(messagesPerRoom: 5, shownOnJoin: 3), clock: { 42 })
        var ids: [String] = []
        for n in 1...8 { ids.append(history.appendNow(room: "r", nick: "n", text: "t\(n)") { _ in }.id) }
        let recent = history.history(of: "r", since: nil, limit: 100)
        #expect(recent.messages.map(\.text) == ["t6", "t7", "t8"] && !recent.gap && !recent.more)
        let after = history.history(of: "r", since: ids[3], limit: 100)  // t4, still in the ring
        #expect(after.messages.map(\.text) == ["t5", "t6", "t7", "t8"] && !after.gap && !after.more)
        let firstPage = history.history(of: "r", since: ids[3], limit: 3)
        #expect(firstPage.messages.map(\.text) == ["t5", "t6", "t7"] && firstPage.more)
        let secondPage = history.history(of: "r", since: firstPage.messages.last!.id, limit: 3)
        #expect(secondPage.messages.map(\.text) == ["t8"] && !secondPage.more)
        let tooOld = history.history(of: "r", since: ids[1], limit: 100)  // t2, pushed out
        #expect(tooOld.messages.map(\.text) == ["t6", "t7", "t8"] && tooOld.gap)
        #expect(history.history(of: "unknown", since: nil, limit: 100) == HistoryPage(messages: [], gap: false))
        #expect(history.history(of: "unknown", since: ids[0], limit: 100).gap, "a client that saw messages we lost")
        #expect(recent.messages.allSatisfy { $0.ts == 42 && $0.room == "r" && $0.nick == "n" })
    }

    @Test("Past the room limit, only rooms nobody is in lose their history, the longest-empty first")
    func roomLimit() async throws {
        let history = InMemoryRoomHistory(limits: .init(messagesPerRoom: 10, maxRooms: 3))
        let directory = ConnectionRegistry(limits: .init(maxRooms: 3), observer: history)
        #expect(directory.enter("lobby"))
        history.appendNow(room: "lobby", nick: "n", text: "kept") { _ in }
        for room in ["a", "b"] {
            #expect(directory.enter(room))
            history.appendNow(room: room, nick: "n", text: "1") { _ in }
            directory.leave(room)
        }
        #expect(directory.enter("c"))
        history.appendNow(room: "c", nick: "n", text: "1") { _ in }  // 4 rooms: "a", empty longest, goes
        #expect(history.history(of: "a", since: nil, limit: 10).messages.isEmpty)
        #expect(history.history(of: "b", since: nil, limit: 10).messages.map(\.text) == ["1"])
        #expect(directory.enter("d"))
        #expect(directory.enter("e") == false, "the node's room cap: 3 rooms with members at most")
        history.appendNow(room: "d", nick: "n", text: "1") { _ in }  // "b" goes: the only empty one
        #expect(history.history(of: "b", since: nil, limit: 10).messages.isEmpty)
        directory.leave("c")
        #expect(directory.enter("e"))
        history.appendNow(room: "e", nick: "n", text: "1") { _ in }  // now "c" is empty, and goes
        #expect(history.history(of: "c", since: nil, limit: 10).messages.isEmpty)
        for room in ["lobby", "d", "e"] {
            #expect(history.history(of: room, since: nil, limit: 10).messages.count == 1, "\(room) has members")
        }
        #expect(history.evictedRooms == 3)
    }

    @Test("Fair bytes: a writer over its share loses its own rooms' oldest; the largest writer goes first")
    func fairBytes() {
        let history = InMemoryRoomHistory(limits: .init(messagesPerRoom: 1000, maxBytes: 16_000_000))
        let registry = ConnectionRegistry(observer: history)
        for room in ["quiet", "busy"] {
            #expect(registry.enter(room))
            for n in 0..<30 { history.appendNow(room: room, nick: "v", writer: "user \(room)", text: "\(n)") { _ in } }
        }
        registry.leave("quiet")
        // The audit's scenario: one address, 170 rooms of its own kept occupied, 10 × 12 KB each (20 MB against a
        // budget of 16 MB; its share is 1 MB, and each occupied room keeps its newest message).
        let big = String(repeating: "x", count: 12_000)
        for n in 0..<170 {
            #expect(registry.enter("flood-\(n)"))
            for _ in 0..<10 {
                history.appendNow(room: "flood-\(n)", nick: "a", writer: "address a", text: big) { _ in }
            }
        }
        #expect(history.bytes(of: "address a") <= 170 * 12_200)
        // Many sockets, each a client of its own within its share (48 KB), 19 MB together: the largest go first.
        for n in 0..<400 {
            for _ in 0..<4 { history.appendNow(room: "s-\(n)", nick: "s", writer: "socket \(n)", text: big) { _ in } }
        }
        #expect(history.bytes <= 16_000_000)
        for room in ["quiet", "busy"] {
            let kept = history.history(of: room, since: nil, limit: 100).messages.map(\.text)
            #expect(kept == (0..<30).map { "\($0)" }, "\(room) is untouched")
        }
    }

    @Test("A writer's own room is trimmed below the shown-on-join floor only of its own messages")
    func shownFloor() {
        let history = InMemoryRoomHistory(
            limits: .init(messagesPerRoom: 1000, shownOnJoin: 5, maxBytes: 100_000, maxBytesPerClient: 10_000))
        // A shared room: 5 messages of others first, then a flood by one writer.
        for n in 0..<5 { history.appendNow(room: "shared", nick: "v", writer: "user v", text: "v\(n)") { _ in } }
        for _ in 0..<20 {
            history.appendNow(room: "shared", nick: "a", writer: "address a", text: String(repeating: "x", count: 1000))
            { _ in }
        }
        let kept = history.history(of: "shared", since: nil, limit: 100).messages
        #expect(history.bytes(of: "address a") <= 10_000)
        #expect(kept.count >= 5, "never below the floor for the flooder's sake")
    }

    @Test("Messages older than the age limit are neither kept nor sent; `since` one of them is a gap")
    func ageLimit() async throws {
        let now = NIOLockedValueBox<Int64>(1_000_000)
        let history = InMemoryRoomHistory(
            limits: .init(messagesPerRoom: 10, maxAgeMilliseconds: 1_000), clock: { now.withLockedValue { $0 } })
        let old = history.appendNow(room: "r", nick: "n", text: "old") { _ in }
        now.withLockedValue { $0 += 600 }
        history.appendNow(room: "r", nick: "n", text: "newer") { _ in }
        now.withLockedValue { $0 += 600 }  // "old" is 1,200 ms old now
        #expect(history.history(of: "r", since: nil, limit: 10).messages.map(\.text) == ["newer"])
        #expect(history.history(of: "r", since: old.id, limit: 10).gap)
        now.withLockedValue { $0 += 1_000 }
        #expect(history.history(of: "r", since: nil, limit: 10).messages.isEmpty)
        #expect(history.bytes == 0, "expired messages are dropped, not just hidden")
    }

    @Test("Past the byte budget the largest writer's rooms give up their oldest; a smaller writer's empty room stays")
    func byteLimit() async throws {
        let text = String(repeating: "x", count: 1_000)
        let history = InMemoryRoomHistory(
            limits: .init(messagesPerRoom: 100, maxBytes: 10_000, maxBytesPerRoom: 100_000, maxBytesPerClient: 100_000))
        let directory = ConnectionRegistry(limits: .init(maxRooms: 10), observer: history)
        #expect(directory.enter("empty"))
        for _ in 0..<3 { history.appendNow(room: "empty", nick: "n", writer: "user a", text: text) { _ in } }
        directory.leave("empty")
        #expect(directory.enter("busy"))
        for n in 0..<20 { history.appendNow(room: "busy", nick: "n", writer: "user b", text: "\(n)" + text) { _ in } }
        #expect(history.history(of: "empty", since: nil, limit: 100).messages.count == 3)
        let kept = history.history(of: "busy", since: nil, limit: 100).messages
        #expect(kept.count < 10 && kept.last?.text.hasPrefix("19") == true)
        #expect(history.bytes <= 10_000)
    }

    @Test("A room keeps its newest message whatever its writer's share: a catch-up's last id stays known")
    func newestKept() {
        let history = InMemoryRoomHistory(limits: .init(maxBytes: 16_000))  // a share of 1,000 bytes
        let registry = ConnectionRegistry(observer: history)
        let text = String(repeating: "x", count: 2_000)
        for n in 0..<3 {
            #expect(registry.enter("r\(n)"))
            history.appendNow(room: "r\(n)", nick: "n", writer: "user a", text: text) { _ in }
        }
        history.appendNow(room: "nobody-here", nick: "n", writer: "user a", text: text) { _ in }
        for n in 0..<3 { #expect(history.history(of: "r\(n)", since: nil, limit: 10).messages.count == 1) }
        #expect(history.history(of: "nobody-here", since: nil, limit: 10).messages.isEmpty, "no members: it goes")
    }

    @Test("Ids: ordered within an epoch (sequences and stream ids), any other epoch counts as after")
    func ids() {
        #expect(RoomMessageID.isAfter("e/10", "e/9"))
        #expect(!RoomMessageID.isAfter("e/9", "e/10"))
        #expect(!RoomMessageID.isAfter("e/9", "e/9"))
        #expect(RoomMessageID.isAfter("e/1700000000000-1", "e/1700000000000-0"))
        #expect(RoomMessageID.isAfter("e/1700000000001-0", "e/1700000000000-7"))
        #expect(RoomMessageID.isAfter("new/1", "old/99"))
        #expect(RoomMessageID.split("no-slash") == nil)
        #expect(RoomMessageID.split("e/x") == nil)
        #expect(RoomMessageID.split("a/b/3-4").map { "\($0.0) \($0.1)" } == "a/b [3, 4]")
    }
}

extension ConnectionRegistry {
    /// Enters `room` for no client in particular; whether it was let in.
    fileprivate func enter(_ room: String) -> Bool { self.enter(room, client: nil) == nil }
}
