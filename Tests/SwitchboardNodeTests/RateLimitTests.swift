import Foundation
import NIOCore
import Switchboard
import SwitchboardAuth
import SwitchboardNode
import SwitchboardPubSub
import SwitchboardTesting
import SwitchboardTopics
import Testing

@testable import SwitchboardApi
@testable import SwitchboardRooms

private let secret = "the-rate-limit-tests-hmac-secret-of-32-bytes"

private func app(_ limits: ChatRateLimits) async throws -> ChatApplication {
    let auth = ChatAuthentication(
        verifier: try await TokenVerifier(keys: [try .hmac(secret: secret)]), allowsAnonymous: true)
    return ChatApplication.make(
        topics: Topics(broker: LocalBroker(), logger: testLogger),
        configuration: ChatConfiguration(auth: auth, rateLimits: limits), logger: testLogger)
}

extension RawClient {
    /// Opens `/ws`, authenticates as `user` if given, and joins `room`.
    fileprivate func enter(_ room: String, as user: String? = nil) async throws {
        try await self.openRooms()
        if let user {
            let token = try await TokenIssuer.sign(.init(userID: user), with: .hmac(secret: secret))
            try await self.sendJSON(["type": "auth", "token": token])
            #expect(try await self.readJSON()["type"] as? String == "authenticated")
        }
        _ = try await self.join(room)
    }

    /// Sends `count` says at once and reads the replies: how many became messages, and the refusals.
    fileprivate func sayMany(_ count: Int, in room: String) async throws -> (sent: Int, refused: [[String: Any]]) {
        for n in 0..<count { try await self.sendJSON(["type": "say", "room": room, "text": "m\(n)"]) }
        var sent = 0
        var refused: [[String: Any]] = []
        while sent + refused.count < count {
            let frame = try await self.readJSON()
            if frame["type"] as? String == "message" { sent += 1 } else { refused.append(frame) }
        }
        return (sent, refused)
    }
}

@Suite("Rate limits over /ws: per socket, per user, then closed")
struct RateLimitTests {
    @Test(
        "A burst of 10 then 5/s: exactly 10 of 15 go through, the rest are refused with retryAfter; after it, one more")
    func perSocket() async throws {
        var limits = ChatRateLimits()
        limits.sayMessages = .init(rate: 5, burst: 10)
        try await withServer(try await app(limits)) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.enter("lobby")
                let (sent, refused) = try await client.sayMany(15, in: "lobby")
                #expect(sent == 10 && refused.count == 5)
                for frame in refused {
                    #expect(frame["code"] as? String == "rate_limited" && frame["room"] as? String == "lobby")
                    #expect((1...200).contains(frame["retryAfter"] as? Int ?? 0), "\(frame)")
                }
                try await Task.sleep(for: .milliseconds(210))  // one token at 5/s
                #expect(try await client.sayMany(1, in: "lobby").sent == 1)
            }
        }
    }

    @Test("Bytes per socket: 3 messages of 400 bytes within a burst of 1,000 bytes go as 2")
    func bytes() async throws {
        var limits = ChatRateLimits()
        limits.sayBytes = .init(rate: 10, burst: 1000)
        try await withServer(try await app(limits)) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.enter("lobby")
                let text = String(repeating: "x", count: 400)
                for _ in 0..<3 { try await client.sendJSON(["type": "say", "room": "lobby", "text": text]) }
                var kinds: [String] = []
                for _ in 0..<3 { kinds.append(try await client.readJSON()["type"] as? String ?? "") }
                // The refusal is the direct reply; messages come back through the broker, so order is not fixed.
                #expect(kinds.sorted() == ["error", "message", "message"])
            }
        }
    }

    @Test("Per user: two sockets of one user share the user's bucket; a third socket is one too many (4005)")
    func perUser() async throws {
        var limits = ChatRateLimits()
        limits.userSayMessages = .init(rate: 1, burst: 8)
        limits.connectionsPerUser = 2
        try await withServer(try await app(limits)) { _, port in
            try await RawClient.withConnection(port: port) { first in
                try await first.enter("lobby", as: "alice")
                try await RawClient.withConnection(port: port) { second in
                    try await second.enter("other", as: "alice")
                    #expect(try await first.sayMany(5, in: "lobby").sent == 5)
                    let (sent, refused) = try await second.sayMany(5, in: "other")
                    #expect(sent == 3 && refused.count == 2, "8 per user over both sockets")
                    try await RawClient.withConnection(port: port) { third in
                        try await third.openRooms()
                        let token = try await TokenIssuer.sign(.init(userID: "alice"), with: .hmac(secret: secret))
                        try await third.sendJSON(["type": "auth", "token": token])
                        #expect(try await third.readJSON()["code"] as? String == "too_many_connections")
                        let close = try await third.readFrame()
                        #expect(close?.opcode == 0x8 && close?.closeCode == 4005)
                    }
                }
            }
        }
    }

    @Test("Joins and nick changes have buckets too; a socket that keeps going past its refusals is closed with 4008")
    func closeAfterRefusals() async throws {
        var limits = ChatRateLimits()
        limits.nicks = .init(rate: 0.1, burst: 2)
        limits.joins = .init(rate: 0.1, burst: 3)
        limits.maxRefusals = 2
        try await withServer(try await app(limits)) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.openRooms()
                var codes: [String] = []
                for n in 0..<3 {
                    try await client.sendJSON(["type": "nick", "nick": "n\(n)"])
                    let reply = try await client.readJSON()
                    codes.append(reply["code"] as? String ?? reply["type"] as? String ?? "")
                }
                #expect(codes == ["nick", "nick", "rate_limited"])
                for room in ["a", "b", "c"] { _ = try await client.join(room) }
                try await client.sendJSON(["type": "join", "room": "d"])
                #expect(try await client.readJSON()["code"] as? String == "rate_limited")  // a refusal, 1 in a row
                try await client.sendJSON(["type": "join", "room": "e"])
                #expect(try await client.readJSON()["code"] as? String == "rate_limited")  // 2 in a row: the most
                try await client.sendJSON(["type": "join", "room": "f"])  // the 3rd is answered, and ends the socket
                // Presence frames of the joins may still be on their way before the answer and the close.
                var close = try await client.readFrame()
                var answered = false
                while let frame = close, frame.opcode == 0x1 {
                    answered = answered || frame.text.contains(#""code":"rate_limited""#)
                    #expect(frame.text.contains(#""type":"presence""#) || answered, "\(frame.text)")
                    close = try await client.readFrame()
                }
                #expect(answered)
                #expect(close?.opcode == 0x8 && close?.closeCode == 4008)
            }
        }
    }

    @Test("Refused requests are not free: 51 bad frames get 51 errors, then 4008, and the node reads no more of it")
    func refusedFramesCloseTheSocket() async throws {
        try await withServer(try await app(ChatRateLimits())) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.openRooms()
                // Each kind that used to be refused before any bucket was asked.
                let junk = [
                    "not json", #"{"type":"dance"}"#, #"{"type":"join","room":"a b"}"#,
                    #"{"type":"say","room":"lobby","text":"x"}"#, "",
                ]
                for n in 0..<200 { try await client.sendText(junk[n % junk.count]) }
                var errors = 0
                var close: TestFrame?
                while let frame = try await client.readFrame() {
                    if frame.opcode == 0x8 {
                        close = frame
                        break
                    }
                    errors += 1
                }
                #expect(errors == 51, "the 51st refusal in a row is the last answered")
                #expect(close?.closeCode == 4008)
                // The node closed TCP behind its close frame: what the client still sends is refused by the kernel.
                let payload = [UInt8](repeating: 0x61, count: 64 * 1024)
                var written = 0
                let deadline = ContinuousClock.now + .seconds(3)
                do {
                    while ContinuousClock.now < deadline {
                        try await client.send(clientFrame(0x2, payload))
                        written += payload.count
                    }
                } catch {}
                // What the kernels hold (this client's send buffer, up to tcp_wmem's 4 MiB, and the node's unread
                // receive window) and nothing more: before, the node read 689 MB in 5 s from such a socket.
                #expect(written < 16 * 1024 * 1024, "\(written) bytes written after the close")
            }
        }
    }

    @Test("Every frame costs: with a frame budget of 11, a join and 10 says go through and 5 more are refused")
    func frameBudget() async throws {
        var limits = ChatRateLimits()
        limits.frames = .init(rate: 0.1, burst: 11)
        try await withServer(try await app(limits)) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.enter("lobby")
                let (sent, refused) = try await client.sayMany(15, in: "lobby")
                #expect(sent == 10 && refused.count == 5)
                #expect(refused.allSatisfy { ($0["message"] as? String)?.contains("frames") == true }, "\(refused)")
            }
        }
    }

    @Test("Catch-up bytes count: a socket that was sent 34 KB of history with a budget of 20 KB waits to rejoin")
    func catchUpBudget() async throws {
        var limits = ChatRateLimits()
        limits.catchUpBytes = .init(rate: 1000, burst: 20_000)
        try await withServer(try await app(limits)) { _, port in
            try await RawClient.withConnection(port: port) { writer in
                try await writer.enter("archive")
                let text = String(repeating: "h", count: 1000)
                for _ in 0..<30 {
                    try await writer.sendJSON(["type": "say", "room": "archive", "text": text])
                    #expect(try await writer.readJSON()["type"] as? String == "message")
                }
            }
            try await RawClient.withConnection(port: port) { reader in
                try await reader.openRooms()
                let first = try await reader.join("archive")
                #expect((first["messages"] as? [Any])?.count == 30)
                try await reader.sendJSON(["type": "leave", "room": "archive"])
                #expect(try await reader.readJSON()["type"] as? String == "left")
                try await reader.sendJSON(["type": "join", "room": "archive"])
                let refused = try await reader.readJSON()
                #expect(refused["code"] as? String == "rate_limited", "\(refused)")
                #expect((refused["retryAfter"] as? Int ?? 0) > 10_000, "about 15 KB of debt at 1 KB/s")
            }
        }
    }
}
