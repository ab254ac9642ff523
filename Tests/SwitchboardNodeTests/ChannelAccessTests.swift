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

private let secret = "the-channel-tests-hmac-secret-of-32-bytes-or-more"
private let notifyKey = "notify-key-0123456789"
private let ordersKey = "orders-key-0123456789"

private func app(anonymous: Bool = true, counters: ChatCounters = ChatCounters()) async throws -> ChatApplication {
    let auth = ChatAuthentication(
        verifier: try await TokenVerifier(keys: [try .hmac(secret: secret)]), allowsAnonymous: anonymous)
    let keys = [
        PublishKey(name: "notify", secret: notifyKey, channels: [ChannelPattern("user:*")!]),
        PublishKey(
            name: "orders", secret: ordersKey, channels: [ChannelPattern("orders.*")!], rate: .init(rate: 0.1, burst: 2)
        ),
    ]
    return ChatApplication.make(
        topics: Topics(broker: LocalBroker(), logger: testLogger),
        configuration: ChatConfiguration(publishKeys: keys, auth: auth), counters: counters, logger: testLogger)
}

private func token(_ user: String) async throws -> String {
    try await TokenIssuer.sign(.init(userID: user), with: .hmac(secret: secret))
}

extension RawClient {
    fileprivate func post(_ text: String, to channel: String, key: String) async throws -> TestResponse {
        try await self.send(
            "POST /publish/\(channel) HTTP/1.1\r\nHost: t\r\nContent-Length: \(text.utf8.count)\r\n"
                + "Authorization: Bearer \(key)\r\n\r\n\(text)")
        return try await self.readResponse()
    }
}

@Suite("Channels: who may read /subscribe, and publish keys scoped to channels")
struct ChannelAccessTests {
    @Test("room: channels are never readable on /subscribe (no invisible reading of rooms)")
    func roomChannels() async throws {
        try await withServer(try await app()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                let status = try await client.handshake(path: "/subscribe/room:lobby").status
                #expect(status == 403)
            }
            try await RawClient.withConnection(port: port) { client in
                let response = try await client.handshake(
                    path: "/subscribe/room:lobby", headers: ["Authorization: Bearer \(try await token("alice"))"])
                #expect(response.status == 403, "not with a token either")
            }
        }
    }

    @Test("user:42 is readable by user 42 only; a publish to it reaches every socket of 42 and none of 43")
    func userChannels() async throws {
        try await withServer(try await app()) { _, port in
            try await RawClient.withConnection(port: port) { nobody in
                let status = try await nobody.handshake(path: "/subscribe/user:42").status
                #expect(status == 401)
            }
            try await RawClient.withConnection(port: port) { other in
                let response = try await other.handshake(
                    path: "/subscribe/user:42", headers: ["Authorization: Bearer \(try await token("43"))"])
                #expect(response.status == 403)
            }
            // 42 on two devices: a native client with the header, a browser with the subprotocol.
            try await RawClient.withConnection(port: port) { phone in
                let header = try await phone.handshake(
                    path: "/subscribe/user:42", headers: ["Authorization: Bearer \(try await token("42"))"])
                #expect(header.status == 101)
                try await RawClient.withConnection(port: port) { browser in
                    let offered = "Sec-WebSocket-Protocol: switchboard.v1, bearer.\(try await token("42"))"
                    let response = try await browser.handshake(path: "/subscribe/user:42", headers: [offered])
                    #expect(response.status == 101)
                    #expect(response.header("Sec-WebSocket-Protocol") == "switchboard.v1", "the token is not echoed")
                    try await RawClient.withConnection(port: port) { fortyThree in
                        let mine = try await fortyThree.handshake(
                            path: "/subscribe/user:43", headers: ["Authorization: Bearer \(try await token("43"))"])
                        #expect(mine.status == 101)
                        try await RawClient.withConnection(port: port) { api in
                            let first = try await api.post("your order shipped", to: "user:42", key: notifyKey)
                            let second = try await api.post("for 43", to: "user:43", key: notifyKey)
                            #expect(first.status == 204 && second.status == 204)
                        }
                        #expect(try await phone.readFrame()?.text == "your order shipped")
                        #expect(try await browser.readFrame()?.text == "your order shipped")
                        #expect(try await fortyThree.readFrame()?.text == "for 43", "43 gets only its own")
                    }
                }
            }
        }
    }

    @Test("Publish keys: scoped to their patterns, never room channels, 401 for an unknown key, 429 past the rate")
    func publishKeys() async throws {
        let counters = ChatCounters()
        try await withServer(try await app(counters: counters)) { _, port in
            try await RawClient.withConnection(port: port) { api in
                #expect(try await api.post("x", to: "orders.1042", key: notifyKey).status == 403)
                #expect(try await api.post("x", to: "room:lobby", key: notifyKey).status == 403)
                #expect(try await api.post("x", to: "user:42", key: "not-a-key-0123456789").status == 401)
                #expect(try await api.post("x", to: "orders.1042", key: ordersKey).status == 204)
                #expect(try await api.post("x", to: "orders.1043", key: ordersKey).status == 204)
                let limited = try await api.post("x", to: "orders.1044", key: ordersKey)
                #expect(limited.status == 429)
                #expect(Int(limited.header("Retry-After") ?? "") ?? 0 >= 1)
                #expect(counters.snapshot.rateLimitRefusals == 1, "the 429 is counted")
                #expect(try await api.post("x", to: "user:42", key: notifyKey).status == 204, "other keys unaffected")
            }
        }
    }

    @Test("A /subscribe socket is closed with 4002 when its token expires")
    func expiry() async throws {
        try await withServer(try await app()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                let short = try await TokenIssuer.sign(
                    .init(userID: "42", lifetime: .seconds(1)), with: .hmac(secret: secret))
                let status = try await client.handshake(
                    path: "/subscribe/user:42", headers: ["Authorization: Bearer \(short)"]
                ).status
                #expect(status == 101)
                let close = try await client.readFrame()
                #expect(close?.opcode == 0x8 && close?.closeCode == 4002)
            }
        }
    }

    @Test("With tokens required, /subscribe and /chat need a valid token")
    func required() async throws {
        try await withServer(try await app(anonymous: false)) { _, port in
            for path in ["/subscribe/news", "/chat"] {
                try await RawClient.withConnection(port: port) { client in
                    let status = try await client.handshake(path: path).status
                    #expect(status == 401)
                }
                try await RawClient.withConnection(port: port) { client in
                    let forged = "Authorization: Bearer \(AuthTests.unsigned(#"{"sub":"alice"}"#))"
                    let status = try await client.handshake(path: path, headers: [forged]).status
                    #expect(status == 401)
                }
                try await RawClient.withConnection(port: port) { client in
                    let valid = "Authorization: Bearer \(try await token("alice"))"
                    #expect(try await client.handshake(path: path, headers: [valid]).status == 101)
                }
            }
        }
    }
}
