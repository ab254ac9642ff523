import Foundation
import NIOCore
import NIOPosix
import Switchboard
import SwitchboardAuth
import SwitchboardNode
import SwitchboardPubSub
import SwitchboardTesting
import SwitchboardTopics
import Testing

@testable import SwitchboardApi
@testable import SwitchboardRooms

private let secret = "the-chat-tests-hmac-secret-of-32-bytes-or-more"

private func token(
    _ user: String, name: String? = nil, rooms: [String]? = nil, lifetime: Duration? = .seconds(600),
    key: TokenIssuer.SigningKey = .hmac(secret: secret)
) async throws -> String {
    try await TokenIssuer.sign(.init(userID: user, name: name, rooms: rooms, lifetime: lifetime), with: key)
}

/// A chat app with tokens on; its presence store, to check what was joined.
private func authApp(
    anonymous: Bool = false, privateRooms: [String] = [], authTimeout: TimeAmount = .seconds(10),
    refreshAhead: TimeAmount = .seconds(60), policy: TokenVerifier.Policy = .init()
) async throws -> (ChatApplication, InMemoryPresence) {
    let broker = LocalBroker()
    let presence = InMemoryPresence(broker: broker, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
    let auth = ChatAuthentication(
        verifier: try await TokenVerifier(keys: [try .hmac(secret: secret)], policy: policy),
        allowsAnonymous: anonymous,
        privateRooms: privateRooms.compactMap(ChannelPattern.init), authTimeout: authTimeout,
        refreshAhead: refreshAhead)
    let app = ChatApplication.make(
        topics: Topics(broker: broker, logger: testLogger), configuration: ChatConfiguration(auth: auth),
        presence: presence, logger: testLogger)
    return (app, presence)
}

extension RawClient {
    /// Opens `/ws` and returns the welcome frame.
    fileprivate func openRoomsWelcome() async throws -> [String: Any] {
        let response = try await self.handshake(path: "/ws", headers: ["Sec-WebSocket-Protocol: switchboard.chat.v1"])
        #expect(response.status == 101)
        return try await self.readJSON()
    }

    /// Sends `auth` and returns the reply.
    fileprivate func auth(_ token: String) async throws -> [String: Any] {
        try await self.sendJSON(["type": "auth", "token": token, "ref": "a"])
        return try await self.readJSON()
    }

    /// The close code of the next close frame, skipping other frames.
    fileprivate func closeCode() async throws -> UInt16? {
        while let frame = try await self.readFrame() {
            if frame.opcode == 0x9 { try await self.send(clientFrame(0xA, Array(frame.payload.readableBytesView))) }
            if frame.opcode == 0x8 { return frame.closeCode }
        }
        return nil
    }
}

@Suite("Identity over /ws: tokens, names, members-only rooms, expiry")
struct AuthTests {
    @Test("With tokens required: nothing before auth; the token's user and name in welcome, messages and presence")
    func identity() async throws {
        let (app, presence) = try await authApp()
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                #expect(try await client.openRoomsWelcome()["auth"] as? String == "required")
                try await client.sendJSON(["type": "join", "room": "lobby"])
                #expect(try await client.readJSON()["code"] as? String == "unauthenticated")
                let reply = try await client.auth(try await token("alice", name: "Alice"))
                #expect(reply["type"] as? String == "authenticated", "\(reply)")
                let you = reply["you"] as? [String: Any]
                #expect(you?["user"] as? String == "alice" && you?["nick"] as? String == "Alice")
                #expect(reply["expiresAt"] as? Int64 != nil || reply["expiresAt"] as? Int != nil)
                // The name is the token's: a nick cannot change it, and a say cannot claim another.
                try await client.sendJSON(["type": "nick", "nick": "bob"])
                #expect(try await client.readJSON()["code"] as? String == "nick_fixed")
                let joined = try await client.join("lobby")
                #expect((joined["you"] as? [String: Any])?["user"] as? String == "alice")
                try await client.sendJSON(["type": "say", "room": "lobby", "text": "hi", "nick": "bob", "user": "bob"])
                let message = try await client.readJSON()
                #expect(message["user"] as? String == "alice" && message["nick"] as? String == "Alice", "\(message)")
                let members = try await presence.members(of: "lobby")
                #expect(members.map(\.user) == ["alice"] && members.map(\.nick) == ["Alice"])
                // A second socket of alice: one user with two connections.
                try await RawClient.withConnection(port: port) { second in
                    _ = try await second.openRoomsWelcome()
                    _ = try await second.auth(try await token("alice", name: "Alice"))
                    let joined = try await second.join("lobby")
                    let users = joined["users"] as? [[String: Any]] ?? []
                    #expect(users.count == 1, "\(users)")
                    #expect(users.first?["user"] as? String == "alice" && users.first?["connections"] as? Int == 2)
                    #expect((joined["members"] as? [Any])?.count == 2, "members stay one per socket")
                }
            }
        }
    }

    @Test("Refused tokens: each gets its error code, the socket is closed with 4001, nothing is joined")
    func refused() async throws {
        let (app, presence) = try await authApp(policy: .init(audience: "chat", issuer: "https://app"))
        func signed(_ edit: (inout TokenIssuer.Claims) -> Void) async throws -> String {
            var claims = TokenIssuer.Claims(userID: "alice")
            (claims.audience, claims.issuer) = ("chat", "https://app")
            edit(&claims)
            return try await TokenIssuer.sign(claims, with: .hmac(secret: secret))
        }
        let expired = try await TokenIssuer.sign(
            .init(userID: "alice", lifetime: .seconds(60), now: Date().addingTimeInterval(-3600)),
            with: .hmac(secret: secret))
        let cases: [(String, String)] = [
            (
                try await token("alice", key: .hmac(secret: "a-different-secret-of-32-bytes-or-more")),
                "token_bad_signature"
            ),
            (try await token("alice", key: .privateKey(pem: TestKeys.ecPrivate)), "token_algorithm_not_allowed"),
            (Self.unsigned(#"{"sub":"alice"}"#), "token_algorithm_not_allowed"),
            (expired, "token_expired"),
            (try await signed { $0.userID = "bad user" }, "token_invalid_claims"),
            (String(repeating: "x", count: 12_000), "token_too_large"),
            ("garbage", "token_malformed"),
            (try await signed { $0.notBefore = Date().addingTimeInterval(3600) }, "token_not_yet_valid"),
            (try await signed { $0.audience = "other" }, "token_wrong_audience"),
            (try await signed { $0.issuer = "https://evil" }, "token_wrong_issuer"),
        ]
        try await withServer(app) { _, port in
            for (token, code) in cases {
                try await RawClient.withConnection(port: port) { client in
                    _ = try await client.openRoomsWelcome()
                    let reply = try await client.auth(token)
                    #expect(reply["code"] as? String == code, "\(reply)")
                    #expect(try await client.closeCode() == 4001)
                }
            }
            #expect(try await presence.members(of: "lobby").isEmpty)
        }
    }

    @Test("Requests sent right after auth, before its reply, run as the token's user")
    func pipelined() async throws {
        let (app, presence) = try await authApp(anonymous: true, privateRooms: ["team-*"])
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.openRoomsWelcome()
                try await client.sendJSON(["type": "auth", "token": try await token("alice", rooms: ["team-*"])])
                try await client.sendJSON(["type": "join", "room": "team-red"])
                try await client.sendJSON(["type": "say", "room": "team-red", "text": "first"])
                #expect(try await client.readJSON()["type"] as? String == "authenticated")
                let joined = try await client.readJSON()
                #expect(joined["type"] as? String == "joined")
                // The say ran during the join: in the history the join sends, or live right after it.
                let history = joined["messages"] as? [[String: Any]] ?? []
                let message = try await history.isEmpty ? client.readJSON() : history[0]
                #expect(message["user"] as? String == "alice" && message["text"] as? String == "first", "\(message)")
                #expect(try await presence.members(of: "team-red").map(\.user) == ["alice"])
            }
        }
    }

    @Test("HS/RS confusion over a socket: an HS256 token keyed with the server's RSA public key is refused, 4001")
    func algorithmConfusion() async throws {
        let auth = ChatAuthentication(
            verifier: try await TokenVerifier(keys: [try .publicKey(pem: TestKeys.rsaPublic)]))
        let app = ChatApplication.make(
            topics: Topics(broker: LocalBroker(), logger: testLogger), configuration: ChatConfiguration(auth: auth),
            logger: testLogger)
        let forged = try await token("alice", key: .hmac(secret: TestKeys.rsaPublic))
        let genuine = try await token("alice", key: .privateKey(pem: TestKeys.rsaPrivate))
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.openRoomsWelcome()
                #expect(try await client.auth(forged)["code"] as? String == "token_algorithm_not_allowed")
                #expect(try await client.closeCode() == 4001)
            }
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.openRoomsWelcome()
                #expect(try await client.auth(genuine)["type"] as? String == "authenticated", "RS256 itself works")
            }
        }
    }

    @Test("A refresh whose token carries a new name renames the member in its rooms' presence")
    func renameOnRefresh() async throws {
        let (app, presence) = try await authApp()
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.openRoomsWelcome()
                _ = try await client.auth(try await token("alice", name: "Alice"))
                _ = try await client.join("lobby")
                let reply = try await client.auth(try await token("alice", name: "Alice B."))
                #expect((reply["you"] as? [String: Any])?["nick"] as? String == "Alice B.")
                let renamed = await eventually {
                    (try? await presence.members(of: "lobby").map(\.nick)) == ["Alice B."]
                }
                #expect(renamed)
            }
        }
    }

    @Test("auth is metered: 5 tokens verified in a row, the 6th waits (each is a signature to check)")
    func authRate() async throws {
        let (app, _) = try await authApp()
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.openRoomsWelcome()
                for _ in 0..<5 {
                    #expect(try await client.auth(try await token("alice"))["type"] as? String == "authenticated")
                }
                let refused = try await client.auth(try await token("alice"))
                #expect(refused["code"] as? String == "rate_limited", "\(refused)")
                #expect((refused["retryAfter"] as? Int ?? 0) > 1000)
            }
        }
    }

    @Test("A refresh whose token no longer lists a members-only room takes the socket out of it (revoked)")
    func revokedOnRefresh() async throws {
        let (app, presence) = try await authApp(privateRooms: ["team-*"])
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.openRoomsWelcome()
                _ = try await client.auth(try await token("alice", rooms: ["team-red", "team-blue"]))
                _ = try await client.join("team-red")
                _ = try await client.join("team-blue")
                _ = try await client.join("lobby")
                #expect(
                    try await client.auth(try await token("alice", rooms: ["team-blue"]))["type"] as? String
                        == "authenticated")
                let left = try await client.readJSON()
                #expect(left["type"] as? String == "left" && left["room"] as? String == "team-red")
                #expect(left["reason"] as? String == "revoked")
                #expect(await eventually { (try? await presence.members(of: "team-red").isEmpty) == true })
                try await client.sendJSON(["type": "say", "room": "team-red", "text": "still here?"])
                #expect(try await client.readJSON()["code"] as? String == "not_joined")
                try await client.sendJSON(["type": "say", "room": "team-blue", "text": "kept"])
                #expect(try await client.readJSON()["text"] as? String == "kept")
            }
        }
    }

    @Test("No auth within the deadline: closed with 4001")
    func authTimeout() async throws {
        let (app, _) = try await authApp(authTimeout: .milliseconds(300))
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.openRoomsWelcome()
                #expect(try await client.closeCode() == 4001)
            }
        }
    }

    @Test("Members-only rooms: a token listing the room joins; another token and anonymous sockets get forbidden")
    func privateRooms() async throws {
        let (app, presence) = try await authApp(anonymous: true, privateRooms: ["team-*"])
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                #expect(try await client.openRoomsWelcome()["auth"] as? String == "optional")
                _ = try await client.auth(try await token("alice", rooms: ["team-red"]))
                #expect(try await client.join("team-red")["type"] as? String == "joined")
                try await client.sendJSON(["type": "join", "room": "team-blue"])
                let refused = try await client.readJSON()
                #expect(refused["code"] as? String == "forbidden" && refused["room"] as? String == "team-blue")
            }
            try await RawClient.withConnection(port: port) { anonymous in
                _ = try await anonymous.openRoomsWelcome()
                try await anonymous.sendJSON(["type": "join", "room": "team-red"])
                #expect(try await anonymous.readJSON()["code"] as? String == "forbidden")
                #expect(try await anonymous.join("lobby")["type"] as? String == "joined", "public rooms stay open")
            }
            #expect(try await presence.members(of: "team-blue").isEmpty)
        }
    }

    @Test("Expiry: refresh is asked before exp; a fresh token keeps the socket, none closes it with 4002")
    func refresh() async throws {
        let (app, _) = try await authApp(refreshAhead: .milliseconds(1500))
        try await withServer(app) { _, port in
            async let refreshed: Void = RawClient.withConnection(port: port) { client in
                _ = try await client.openRoomsWelcome()
                _ = try await client.auth(try await token("alice", lifetime: .seconds(2)))
                let ask = try await client.readJSON()
                #expect(ask["type"] as? String == "refresh", "\(ask)")
                #expect(
                    try await client.auth(try await token("alice", lifetime: .seconds(60)))["type"] as? String
                        == "authenticated")
                try await Task.sleep(for: .seconds(3))  // past the first token's exp
                #expect(try await client.join("lobby")["type"] as? String == "joined")
                // A refresh for someone else is refused and ends the socket.
                _ = try await client.auth(try await token("mallory"))
                #expect(try await client.closeCode() == 4003)
            }
            async let expired: Void = RawClient.withConnection(port: port) { client in
                _ = try await client.openRoomsWelcome()
                _ = try await client.auth(try await token("bob", lifetime: .seconds(2)))
                #expect(try await client.readJSON()["type"] as? String == "refresh")
                #expect(try await client.closeCode() == 4002)
            }
            _ = try await (refreshed, expired)
        }
    }

    /// A token with `alg: none` and no signature.
    static func unsigned(_ claims: String) -> String {
        func encode(_ text: String) -> String {
            Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-")
                .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        }
        return encode(#"{"alg":"none","typ":"JWT"}"#) + "." + encode(claims) + "."
    }
}
