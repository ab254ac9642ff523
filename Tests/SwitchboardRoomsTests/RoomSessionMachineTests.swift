import Foundation
import NIOCore
import SwitchboardAuth
import SwitchboardWebSocket
import Testing

@testable import SwitchboardRooms

/// The registry as a session sees it, counting in memory.
private final class Directory: RoomSessionDirectory {
    var rooms: [String: Int] = [:]
    var users: [String: Int] = [:]
    var maxRooms = 100

    func admit(user: String, now: UInt64) -> Bool {
        self.users[user, default: 0] += 1
        return true
    }
    func release(user: String) { self.users[user]! -= 1 }
    func enter(room: String, user: String?) -> RoomEntryRefusal? {
        guard self.rooms[room] != nil || self.rooms.count < self.maxRooms else { return .nodeFull }
        self.rooms[room, default: 0] += 1
        return nil
    }
    func leave(room: String) {
        self.rooms[room]! -= 1
        if self.rooms[room] == 0 { self.rooms[room] = nil }
    }
    func takeMessage(of user: String?, now: UInt64) -> (what: String, wait: UInt64)? { nil }
}

/// A session machine driven by hand, as its adapter would: events in, actions out, no socket.
private struct Session {
    var machine: RoomSessionMachine
    let directory = Directory()
    var now: UInt64 = 1_000_000_000

    init(_ configure: (inout RoomsConfiguration) -> Void = { _ in }) {
        var configuration = RoomsConfiguration()
        configure(&configuration)
        self.machine = RoomSessionMachine(settings: .init(configuration), memberID: "n1-a", now: self.now)
    }

    mutating func handle(_ event: RoomSessionMachine.Event) -> [RoomSessionMachine.Action] {
        self.now += 1_000_000
        return self.machine.handle(event, now: self.now, directory: self.directory)
    }

    mutating func send(_ json: String) -> [RoomSessionMachine.Action] {
        self.handle(.received(ByteBuffer(string: json), isText: true))
    }

    /// Joins `room` and answers every step at once, as stores that work would; the actions of the last step.
    mutating func join(_ room: String, attempt expected: Int) -> [RoomSessionMachine.Action] {
        let joining = self.send(#"{"type":"join","room":"\#(room)"}"#)
        #expect(joining.contains { if case .reserve(room, expected) = $0 { true } else { false } })
        let entering = self.handle(.reserved(room: room, attempt: expected, .success(())))
        #expect(entering.contains { if case .enterPresence(_, room, expected) = $0 { true } else { false } })
        _ = self.handle(.presenceStored(room: room, attempt: expected, .success(())))
        let read = RoomSessionMachine.HistoryRead(page: HistoryPage(messages: [], gap: false), members: [])
        let sending = self.handle(.historyRead(room: room, attempt: expected, .success(read)))
        #expect(sending.contains { if case .sendPaced(_, room, expected) = $0 { true } else { false } })
        _ = self.handle(.historySent(room: room, attempt: expected))
        return self.handle(.handedOver(room: room, attempt: expected, .delivered))
    }
}

extension [RoomSessionMachine.Action] {
    /// The error codes of the error frames sent.
    fileprivate var errors: [String] {
        self.compactMap { if case .send(let frame) = $0 { frame.errorCode } else { nil } }
    }

    fileprivate var closes: [UInt16] {
        self.compactMap { if case .close(let code, _) = $0 { code.rawValue } else { nil } }
    }

    /// Codes of the drops (a close for abuse, reading nothing more).
    fileprivate var drops: [UInt16] {
        self.compactMap { if case .drop(let code, _) = $0 { code.rawValue } else { nil } }
    }
}

@Suite("The rooms session as a state machine: events in, actions out, no socket")
struct RoomSessionMachineTests {
    @Test("A join goes reserve → presence → history → hand-over; the deadline is armed, then cancelled when answered")
    func join() {
        var session = Session()
        let opened = session.handle(.opened(preset: nil))
        #expect(opened.count == 1, "only the welcome: no token is required")
        let joining = session.send(#"{"type":"join","room":"lobby","ref":"r1"}"#)
        #expect(session.directory.rooms == ["lobby": 1])
        #expect(
            joining.contains {
                if case .schedule(.join(room: "lobby"), _, 1) = $0 { true } else { false }
            })
        _ = session.handle(.reserved(room: "lobby", attempt: 1, .success(())))
        _ = session.handle(.presenceStored(room: "lobby", attempt: 1, .success(())))
        let read = RoomSessionMachine.HistoryRead(
            page: HistoryPage(
                messages: [RoomMessage(room: "lobby", id: "e/1", ts: 1, nick: "a", text: "hi")], gap: false),
            members: [PresenceMember(id: "n1-a", nick: "guest")])
        let answered = session.handle(.historyRead(room: "lobby", attempt: 1, .success(read)))
        #expect(answered.contains { if case .cancel(.join(room: "lobby")) = $0 { true } else { false } })
        guard case .sendPaced(let frames, "lobby", 1)? = answered.last, case .joined(let joined)? = frames.first else {
            Issue.record("no joined frame: \(answered)")
            return
        }
        #expect(joined.ref == "r1" && joined.messages.map(\.text) == ["hi"] && !joined.more)
        let handing = session.handle(.historySent(room: "lobby", attempt: 1))
        #expect(handing.contains { if case .handOver("lobby", 1, "e/1") = $0 { true } else { false } })
        #expect(session.handle(.handedOver(room: "lobby", attempt: 1, .delivered)).isEmpty)
    }

    @Test("Results of an attempt that is no longer current are dropped: left, joined again, timed out")
    func staleResults() {
        var session = Session()
        _ = session.handle(.opened(preset: nil))
        _ = session.send(#"{"type":"join","room":"lobby"}"#)
        let left = session.send(#"{"type":"leave","room":"lobby"}"#)
        #expect(left.contains { if case .cancel(.join(room: "lobby")) = $0 { true } else { false } })
        #expect(session.directory.rooms.isEmpty)
        // The first join's reservation and store come back late: nothing happens.
        #expect(session.handle(.reserved(room: "lobby", attempt: 1, .success(()))).isEmpty)
        #expect(session.handle(.presenceStored(room: "lobby", attempt: 1, .success(()))).isEmpty)
        _ = session.send(#"{"type":"join","room":"lobby"}"#)
        #expect(session.handle(.presenceStored(room: "lobby", attempt: 1, .success(()))).isEmpty)
        // The second join's deadline passes while its reservation is out: unavailable, and the room is given back.
        let timedOut = session.handle(.timerFired(.join(room: "lobby"), stamp: 2))
        #expect(timedOut.errors == ["unavailable"])
        #expect(timedOut.contains { if case .count(.joinTimeout) = $0 { true } else { false } })
        #expect(session.directory.rooms.isEmpty)
        #expect(session.handle(.reserved(room: "lobby", attempt: 2, .success(()))).isEmpty)
        // A deadline of an answered join does nothing.
        _ = session.join("lobby", attempt: 4)
        #expect(session.handle(.timerFired(.join(room: "lobby"), stamp: 4)).isEmpty)
    }

    @Test("Say-hook answers that come out of order are applied in the order the messages were sent")
    func sayHookOrder() {
        var session = Session { $0.hooks.say = { _, _, text in .send(text) } }
        _ = session.handle(.opened(preset: nil))
        _ = session.join("lobby", attempt: 1)
        for text in ["one", "two", "three"] {
            let asked = session.send(#"{"type":"say","room":"lobby","text":"\#(text)"}"#)
            #expect(asked.contains { if case .askSayHook(_, _, "lobby", text) = $0 { true } else { false } })
        }
        #expect(session.handle(.sayAnswered(sequence: 2, .send("three"))).isEmpty)
        #expect(session.handle(.sayAnswered(sequence: 1, .reject("no"))).isEmpty)
        let applied = session.handle(.sayAnswered(sequence: 0, .send("one")))
        let posted = applied.compactMap { if case .post(_, let text, _, _) = $0 { text } else { nil } }
        #expect(posted == ["one", "three"])
        #expect(applied.errors == ["rejected"])
    }

    @Test("The close gives everything back: registry, topic memberships, presence, timers; later events do nothing")
    func close() {
        var session = Session { $0.auth = ChatAuthentication(verifier: nil, allowsAnonymous: true) }
        _ = session.handle(.opened(preset: nil))
        _ = session.join("lobby", attempt: 1)
        _ = session.send(#"{"type":"join","room":"attic"}"#)  // still reserving
        let closed = session.handle(.closed)
        #expect(session.directory.rooms.isEmpty)
        #expect(closed.contains { if case .release("lobby") = $0 { true } else { false } })
        #expect(!closed.contains { if case .release("attic") = $0 { true } else { false } })
        #expect(closed.contains { if case .leavePresence(_, "lobby") = $0 { true } else { false } })
        #expect(closed.contains { if case .socketClosed = $0 { true } else { false } })
        #expect(session.handle(.reserved(room: "attic", attempt: 2, .success(()))).isEmpty)
        #expect(session.send(#"{"type":"join","room":"x"}"#).isEmpty)
    }

    @Test("Refusals in a row past the limit drop the socket with 4008; what it sends after is not looked at")
    func refusals() {
        var session = Session {
            $0.rateLimits.joins = .init(rate: 0.001, burst: 1)
            $0.rateLimits.maxRefusals = 3
        }
        _ = session.handle(.opened(preset: nil))
        _ = session.join("a", attempt: 1)
        for _ in 0..<3 { #expect(session.send(#"{"type":"join","room":"b"}"#).errors == ["rate_limited"]) }
        #expect(session.send(#"{"type":"join","room":"b"}"#).drops == [4008])
        #expect(session.send(#"{"type":"leave","room":"a"}"#).isEmpty)
    }

    @Test("Any error answered is a refusal (not only rate limits); a request that goes through starts the count again")
    func everyRefusalCounts() {
        var session = Session { $0.rateLimits.maxRefusals = 3 }
        _ = session.handle(.opened(preset: nil))
        for _ in 0..<3 { #expect(session.send("not json").errors == ["bad_json"]) }
        _ = session.join("a", attempt: 1)  // goes through: the count starts again
        for _ in 0..<3 { #expect(session.send(#"{"type":"dance"}"#).errors == ["unknown_type"]) }
        let last = session.send(#"{"type":"say","room":"nowhere","text":"x"}"#)
        #expect(last.errors == ["not_joined"] && last.drops == [4008])
    }

    @Test("Every frame takes from the frame bucket, refused or not; auth has a bucket of its own")
    func frameAndAuthBuckets() async throws {
        let verifier = try await TokenVerifier(keys: [try .hmac(secret: String(repeating: "k", count: 32))])
        var session = Session {
            $0.auth = ChatAuthentication(verifier: verifier, allowsAnonymous: true)
            $0.rateLimits.frames = .init(rate: 0.001, burst: 4)
            $0.rateLimits.auth = .init(rate: 0.001, burst: 2)
        }
        _ = session.handle(.opened(preset: nil))
        #expect(session.send(#"{"type":"auth","token":"a"}"#).contains { if case .verify = $0 { true } else { false } })
        _ = session.handle(.verified(attempt: 1, .failure(TokenError(.badSignature, "no"))))
        #expect(session.send(#"{"type":"auth","token":"b"}"#).contains { if case .verify = $0 { true } else { false } })
        _ = session.handle(.verified(attempt: 2, .failure(TokenError(.badSignature, "no"))))
        #expect(session.send(#"{"type":"auth","token":"c"}"#).errors == ["rate_limited"], "2 auth a socket")
        #expect(session.send("junk").errors == ["bad_json"])
        #expect(session.send("junk").errors == ["rate_limited"], "4 frames, whatever they were")
    }

    @Test("With tokens required: frames wait for the token's verification, then run as its user; none in time is 4001")
    func tokens() async throws {
        // Tokens are verified by the adapter, never by the machine: any verifier will do.
        let verifier = try await TokenVerifier(keys: [try .hmac(secret: String(repeating: "k", count: 32))])
        var session = Session { $0.auth = ChatAuthentication(verifier: verifier, allowsAnonymous: false) }
        let opened = session.handle(.opened(preset: nil))
        #expect(opened.contains { if case .schedule(.auth, _, _) = $0 { true } else { false } })
        #expect(session.send(#"{"type":"join","room":"lobby"}"#).errors == ["unauthenticated"])
        let verifying = session.send(#"{"type":"auth","token":"t"}"#)
        #expect(verifying.contains { if case .verify("t", 1) = $0 { true } else { false } })
        #expect(session.send(#"{"type":"join","room":"lobby"}"#).isEmpty, "held while the token is verified")
        let verified = session.handle(
            .verified(attempt: 1, .success(Identity(userID: "42", name: "Alice"))))
        #expect(verified.contains { if case .send(.authenticated) = $0 { true } else { false } })
        #expect(verified.contains { if case .reserve("lobby", _) = $0 { true } else { false } }, "the held join ran")
        #expect(session.directory.users == ["42": 1])
        #expect(session.handle(.timerFired(.auth, stamp: 0)).isEmpty, "authenticated in time")
        var late = Session { $0.auth = ChatAuthentication(verifier: verifier, allowsAnonymous: false) }
        _ = late.handle(.opened(preset: nil))
        #expect(late.handle(.timerFired(.auth, stamp: 0)).closes == [4001])
    }
}
