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

private let secret = "the-client-limit-tests-hmac-secret-of-32-bytes"

/// A chat app with `limits`; loopback peers held to the per-address limits (the tests' clients are all 127.0.0.1).
private func app(
    _ configure: (inout ChatRateLimits) -> Void = { _ in }, anonymous: Bool = true,
    counters: ChatCounters = ChatCounters()
) async throws -> ChatApplication {
    var limits = ChatRateLimits()
    limits.limitsLoopback = true
    configure(&limits)
    let auth = ChatAuthentication(
        verifier: try await TokenVerifier(keys: [try .hmac(secret: secret)]), allowsAnonymous: anonymous)
    return ChatApplication.make(
        topics: Topics(broker: LocalBroker(), logger: testLogger),
        configuration: ChatConfiguration(auth: auth, rateLimits: limits), counters: counters, logger: testLogger)
}

private func bearer(_ user: String) async throws -> String {
    "Authorization: Bearer \(try await TokenIssuer.sign(.init(userID: user), with: .hmac(secret: secret)))"
}

@Suite("Per-client limits: /chat messages, sockets and messages per address and per user, rooms per client")
struct ClientLimitsTests {
    @Test("/chat: a sender past its limits has its messages dropped (not published), then 1008 if it goes on")
    func chatFlood() async throws {
        let counters = ChatCounters()
        // The default limits (40, then 20/s), loopback exempt from the per-address ones as by default.
        try await withServer(try await app({ $0.limitsLoopback = false }, counters: counters)) { _, port in
            try await RawClient.withConnection(port: port) { listener in
                #expect(try await listener.handshake(path: "/chat").status == 101)
                try await RawClient.withConnection(port: port) { sender in
                    #expect(try await sender.handshake(path: "/chat").status == 101)
                    for n in 0..<200 { try await sender.send(clientFrame(0x1, text: "flood \(n)")) }
                    var close: TestFrame?
                    while let frame = try await sender.readFrame() {
                        if frame.opcode == 0x8 {
                            close = frame
                            break
                        }
                    }
                    #expect(close?.closeCode == 1008, "dropped after 50 refusals in a row")
                }
                try await RawClient.withConnection(port: port) { marker in
                    #expect(try await marker.handshake(path: "/chat").status == 101)
                    try await marker.send(clientFrame(0x1, text: "end"))
                }
                var received = 0
                while let frame = try await listener.readFrame(), frame.text != "end" { received += 1 }
                #expect((40...45).contains(received), "a burst of 40 and 20/s: \(received) of 200 published")
            }
        }
        #expect(counters.snapshot.refusalClosures == 1)
        #expect(counters.snapshot.rateLimitRefusals == 51, "the rest was never read")
    }

    @Test("WebSockets per address, over /ws, /chat and /subscribe: past the cap 503; a closed one frees its place")
    func socketsPerAddress() async throws {
        let counters = ChatCounters()
        try await withServer(try await app({ $0.socketsPerAddress = 3 }, counters: counters)) { _, port in
            try await RawClient.withConnection(port: port) { first in
                try await first.openRooms()
                try await RawClient.withConnection(port: port) { second in
                    #expect(try await second.handshake(path: "/chat").status == 101)
                    try await RawClient.withConnection(port: port) { third in
                        #expect(try await third.handshake(path: "/subscribe/news").status == 101)
                        for path in ["/chat", "/subscribe/news"] {
                            try await RawClient.withConnection(port: port) { fourth in
                                let response = try await fourth.handshake(path: path)
                                #expect(response.status == 503 && response.header("Retry-After") == "10")
                                let body = try await fourth.read(
                                    count: Int(response.header("Content-Length") ?? "") ?? 0)
                                #expect(body.contains("too many WebSockets from your address"))
                            }
                        }
                        try await RawClient.withConnection(port: port) { fourth in
                            let response = try await fourth.handshake(
                                path: "/ws", headers: ["Sec-WebSocket-Protocol: switchboard.chat.v1"])
                            #expect(response.status == 503)
                        }
                        // Counted before the answer went out.
                        #expect(counters.snapshot.clientSocketRefusals == 3)
                    }
                }
                // The /chat and /subscribe sockets closed: their places are back (a try before the node handled
                // the closes is refused, and counted, too).
                let freed = await eventually {
                    (try? await RawClient.withConnection(port: port) { again in
                        try await again.handshake(path: "/chat").status
                    }) == 101
                }
                #expect(freed)
            }
        }
    }

    @Test("Messages per address: two sockets of one address share its budget (10), whatever each socket may send")
    func messagesPerAddress() async throws {
        try await withServer(try await app({ $0.addressSayMessages = .init(rate: 0.01, burst: 10) })) { _, port in
            try await RawClient.withConnection(port: port) { first in
                try await first.openRooms()
                _ = try await first.join("lobby")
                try await RawClient.withConnection(port: port) { second in
                    try await second.openRooms()
                    _ = try await second.join("lobby")
                    for n in 0..<6 { try await first.sendJSON(["type": "say", "room": "lobby", "text": "a\(n)"]) }
                    for _ in 0..<6 { #expect(try await first.readJSON()["type"] as? String == "message") }
                    for n in 0..<6 { try await second.sendJSON(["type": "say", "room": "lobby", "text": "b\(n)"]) }
                    var messages = 0
                    var refusals: [[String: Any]] = []
                    while messages + refusals.count < 6 + 6 {
                        let frame = try await second.readJSON()
                        if frame["type"] as? String == "message" { messages += 1 } else { refusals.append(frame) }
                    }
                    #expect(messages == 10 && refusals.count == 2, "10 from the address, 6 + 4")
                    for refusal in refusals {
                        #expect(refusal["code"] as? String == "rate_limited")
                        #expect((refusal["message"] as? String)?.contains("from this address") == true, "\(refusal)")
                    }
                }
            }
        }
    }

    @Test("Rooms per client: 5 created by one address, the 6th refused (room_quota); existing rooms stay open")
    func roomQuota() async throws {
        let counters = ChatCounters()
        try await withServer(try await app({ $0.roomsPerClient = 5 }, counters: counters)) { _, port in
            try await RawClient.withConnection(port: port) { first in
                try await first.openRooms()
                for n in 0..<5 { _ = try await first.join("mine-\(n)") }
                try await first.sendJSON(["type": "join", "room": "mine-5"])
                #expect(try await first.readJSON()["code"] as? String == "room_quota")
                try await RawClient.withConnection(port: port) { second in
                    try await second.openRooms()
                    try await second.sendJSON(["type": "join", "room": "another"])
                    #expect(try await second.readJSON()["code"] as? String == "room_quota", "the same address")
                    #expect(try await second.join("mine-0")["type"] as? String == "joined", "existing rooms are open")
                }
                try await RawClient.withConnection(port: port) { carol in
                    try await carol.openRooms()
                    let token = String(try await bearer("carol").dropFirst("Authorization: Bearer ".count))
                    try await carol.sendJSON(["type": "auth", "token": token])
                    #expect(try await carol.readJSON()["type"] as? String == "authenticated")
                    #expect(try await carol.join("carols")["type"] as? String == "joined")
                }
                // Leaving frees a place: a room its last member left is no longer charged.
                try await first.sendJSON(["type": "leave", "room": "mine-4"])
                #expect(try await first.readJSON()["type"] as? String == "left")
                #expect(try await first.join("mine-5")["type"] as? String == "joined")
            }
        }
        #expect(counters.snapshot.roomQuotaRefusals == 2)
    }

    @Test("One count per user over /ws, /subscribe and /chat: the third socket of a user with a cap of 2 is refused")
    func perUserAcrossEndpoints() async throws {
        let counters = ChatCounters()
        try await withServer(try await app({ $0.connectionsPerUser = 2 }, anonymous: false, counters: counters)) {
            _, port in
            let alice = try await bearer("alice")
            try await RawClient.withConnection(port: port) { first in
                #expect(try await first.handshake(path: "/subscribe/user:alice", headers: [alice]).status == 101)
                try await RawClient.withConnection(port: port) { second in
                    #expect(try await second.handshake(path: "/chat", headers: [alice]).status == 101)
                    for path in ["/subscribe/user:alice", "/chat"] {
                        try await RawClient.withConnection(port: port) { third in
                            let response = try await third.handshake(path: path, headers: [alice])
                            #expect(response.status == 503)
                            let body = try await third.read(count: Int(response.header("Content-Length") ?? "") ?? 0)
                            #expect(body.contains("too many connections for this user"))
                        }
                    }
                    try await RawClient.withConnection(port: port) { third in
                        try await third.openRooms()
                        let token = String(alice.dropFirst("Authorization: Bearer ".count))
                        try await third.sendJSON(["type": "auth", "token": token])
                        #expect(try await third.readJSON()["code"] as? String == "too_many_connections")
                    }
                    #expect(
                        try await RawClient.withConnection(port: port) { bob in
                            try await bob.handshake(path: "/chat", headers: [try await bearer("bob")]).status
                        } == 101, "another user is not affected")
                }
            }
        }
    }
}
