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

private let secret = "the-server-api-tests-hmac-secret-of-32-bytes"
let apiAdminKey = "admin-key-0123456789"
private let ordersKey = "orders-key-0123456789"
private let supportKey = "support-key-0123456789"
private let notifyKey = "notify-key-0123456789"
private let moderatorKey = "moderator-key-0123456789"
private let publishToken = "publish-token-0123456789"

/// The API's keys in the tests: an admin (everything), a publisher scoped to `orders.*` and a support key that
/// may read presence and history of `team-*` rooms only; and the publish token.
func apiConfiguration(auth: ChatAuthentication? = nil) throws -> ChatConfiguration {
    var configuration = ChatConfiguration.loadTest
    configuration.apiKeys = [
        try ApiKey.parse("admin:\(apiAdminKey):*:*").get(),
        try ApiKey.parse("orders:\(ordersKey):publish:orders.*").get(),
        try ApiKey.parse("support:\(supportKey):presence,history:room:team-*").get(),
        try ApiKey.parse("notify:\(notifyKey):*:notify:*").get(),
        try ApiKey.parse("moderator:\(moderatorKey):*:user:7,room:lobby").get(),
    ]
    configuration.publishToken = publishToken
    if let auth { configuration.auth = auth }
    return configuration
}

private func apiApp() async throws -> ChatApplication {
    let auth = ChatAuthentication(
        verifier: try await TokenVerifier(keys: [try .hmac(secret: secret)]), allowsAnonymous: true)
    return ChatApplication.make(
        topics: Topics(broker: LocalBroker(), logger: testLogger), configuration: try apiConfiguration(auth: auth),
        logger: testLogger)
}

func apiToken(_ user: String, name: String? = nil) async throws -> String {
    try await TokenIssuer.sign(.init(userID: user, name: name), with: .hmac(secret: secret))
}

extension RawClient {
    /// One API request; the response with its body parsed as a JSON object.
    func api(
        _ method: String, _ path: String, json: String? = nil, key: String? = apiAdminKey
    ) async throws -> (status: Int, json: [String: Any], response: TestResponse) {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: t\r\n"
        if let key { head += "Authorization: Bearer \(key)\r\n" }
        let body = json ?? ""
        if json != nil { head += "Content-Type: application/json\r\n" }
        head += "Content-Length: \(body.utf8.count)\r\n\r\n"
        try await self.send(head + body)
        let response = try await self.readResponse()
        #expect(response.header("Content-Type") == "application/json", "\(method) \(path): \(response.body)")
        let object = try JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any]
        return (response.status, try #require(object, "not a JSON object: \(response.body)"), response)
    }

    /// Opens `/ws`, authenticates with `token` and joins `rooms`.
    func member(token: String, rooms: [String]) async throws {
        try await self.openRooms()
        try await self.sendJSON(["type": "auth", "token": token])
        #expect(try await self.readJSON()["type"] as? String == "authenticated")
        for room in rooms { _ = try await self.join(room) }
    }
}

/// The error code of an API answer.
func errorCode(_ json: [String: Any]) -> String? {
    (json["error"] as? [String: Any])?["code"] as? String
}

@Suite("Server API (/api/v1), one node", .timeLimit(.minutes(1)))
struct ServerApiTests {
    @Test(
        "One bucket per key, whichever endpoint: alternating /publish and /api/v1/publish gets its burst, not twice it")
    func oneBucketPerKey() async throws {
        var configuration = ChatConfiguration.loadTest
        // A burst of 10 that hardly refills, however slow the machine is.
        let slow = TokenBucket.Limit(rate: 0.001, burst: 10)
        configuration.publishKeys = [
            PublishKey(name: "slow", secret: "slow-key-0123456789", channels: [ChannelPattern("*")!], rate: slow)
        ]
        let app = ChatApplication.make(
            topics: Topics(broker: LocalBroker(), logger: testLogger), configuration: configuration, logger: testLogger)
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                var accepted = 0
                for index in 0..<20 {
                    let status: Int
                    if index.isMultiple(of: 2) {
                        try await client.send(
                            "POST /publish/news HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer slow-key-0123456789\r\n"
                                + "Content-Length: 2\r\n\r\nhi")
                        status = try await client.readResponse().status
                    } else {
                        status = try await client.api(
                            "POST", "/api/v1/publish", json: #"{"channel":"news","data":"hi"}"#,
                            key: "slow-key-0123456789"
                        ).status
                    }
                    if status == 204 || status == 200 { accepted += 1 } else { #expect(status == 429) }
                }
                // The key's burst, once: each endpoint with a bucket of its own would let 20 through.
                #expect(accepted == 10, "\(accepted) of 20 went through")
            }
        }
    }

    @Test("publish: one channel, several, a JSON value; subscribers get the text or the JSON")
    func publish() async throws {
        try await withServer(try await apiApp()) { _, port in
            try await RawClient.withConnection(port: port) { news in
                #expect(try await news.handshake(path: "/subscribe/news").status == 101)
                try await RawClient.withConnection(port: port) { alerts in
                    #expect(try await alerts.handshake(path: "/subscribe/alerts").status == 101)
                    try await RawClient.withConnection(port: port) { api in
                        let one = try await api.api("POST", "/api/v1/publish", json: #"{"channel":"news","data":"hi"}"#)
                        #expect(one.status == 200 && one.json["published"] as? Int == 1)
                        #expect(try await news.readFrame()?.text == "hi", "a string goes out as its text")
                        let object = #"{"b": [1, 2.5e3, null, true],"a" :"x\u00e9"}"#
                        let two = try await api.api(
                            "POST", "/api/v1/publish", json: #"{"channels":["news","alerts"],"data":\#(object) }"#)
                        #expect(two.status == 200 && two.json["published"] as? Int == 2)
                        #expect(try await news.readFrame()?.text == object, "other values as JSON, exactly as sent")
                        #expect(try await alerts.readFrame()?.text == object)
                        let big = try await api.api(
                            "POST", "/api/v1/publish", json: #"{"channel":"news","data":9007199254740993}"#)
                        #expect(big.status == 200)
                        #expect(try await news.readFrame()?.text == "9007199254740993", "64-bit integers stay exact")
                        let escaped = #""q\"uote\\back\/slash\nline\u0001\u00e9\ud83d\ude00é""#
                        let text = try await api.api(
                            "POST", "/api/v1/publish", json: #"{"channel":"news","data":\#(escaped)}"#)
                        #expect(text.status == 200)
                        #expect(
                            try await news.readFrame()?.text == "q\"uote\\back/slash\nline\u{1}é😀é",
                            "a string's escapes decoded")
                    }
                }
            }
        }
    }

    @Test("publish refusals: each with its status and stable code")
    func publishRefusals() async throws {
        try await withServer(try await apiApp()) { _, port in
            try await RawClient.withConnection(port: port) { api in
                let cases: [(String, String?, Int, String)] = [
                    (#"{"channel":"news","data":"x"}"#, nil, 401, "unauthorized"),
                    (#"{"channel":"news","data":"x"}"#, "not-a-key-0123456789", 401, "unauthorized"),
                    (#"{"channel":"news","data":"x"}"#, ordersKey, 403, "forbidden"),
                    (#"{"channel":"news","data":"x"}"#, supportKey, 403, "forbidden"),
                    (#"{"channel":"room:lobby","data":"x"}"#, apiAdminKey, 403, "room_channel"),
                    (#"{"channel":"switchboard:control","data":"x"}"#, apiAdminKey, 403, "reserved_channel"),
                    (#"{"channel":"bad channel","data":"x"}"#, apiAdminKey, 400, "invalid_channel"),
                    (#"{"data":"x"}"#, apiAdminKey, 400, "bad_request"),
                    (#"{"channel":"news"}"#, apiAdminKey, 400, "invalid_json"),
                    (#"{"channel":"news","data":""}"#, apiAdminKey, 400, "bad_request"),
                    (#"{"channel":"news","#, apiAdminKey, 400, "invalid_json"),
                    (#"[1,2]"#, apiAdminKey, 400, "invalid_json"),
                    (#"{"channel":"news","channels":null,"data":"x"}"#, apiAdminKey, 400, "invalid_json"),
                    (#"{"channel":7,"data":"x"}"#, apiAdminKey, 400, "invalid_json"),
                    (
                        #"{"channel":"news","data":"\#(String(repeating: "x", count: 70_000))"}"#, apiAdminKey, 413,
                        "too_large"
                    ),
                ]
                for (body, key, status, code) in cases {
                    let answer = try await api.api("POST", "/api/v1/publish", json: body, key: key)
                    #expect(answer.status == status, "\(body.prefix(60)) with \(key ?? "no key")")
                    #expect(errorCode(answer.json) == code, "\(body.prefix(60)): \(answer.json)")
                    #expect(((answer.json["error"] as? [String: Any])?["message"] as? String)?.isEmpty == false)
                }
                let scoped = try await api.api(
                    "POST", "/api/v1/publish", json: #"{"channel":"orders.7","data":"x"}"#, key: ordersKey)
                #expect(scoped.status == 200, "a scoped key on its channels")
                let token = try await api.api(
                    "POST", "/api/v1/publish", json: #"{"channel":"news","data":"x"}"#, key: publishToken)
                #expect(token.status == 200, "the publish token publishes through the API")
                let tokenInfo = try await api.api("GET", "/api/v1/info", key: publishToken)
                #expect(tokenInfo.status == 403 && errorCode(tokenInfo.json) == "forbidden", "and does nothing else")
                let unknown = try await api.api("GET", "/api/v1/nothing")
                #expect(unknown.status == 404 && errorCode(unknown.json) == "not_found")
                let method = try await api.api("DELETE", "/api/v1/publish")
                #expect(method.status == 405 && errorCode(method.json) == "method_not_allowed")
                #expect(method.response.header("Allow") == "POST")
            }
        }
    }

    @Test("batch: every command in order, a failing one answered in its place")
    func batch() async throws {
        // The server's own body limit is 8 MiB by default, above the API's 1 MiB (as here).
        try await withServer(try await apiApp(), configuration: testConfiguration(maxBodySize: 8 << 20)) { _, port in
            try await RawClient.withConnection(port: port) { news in
                #expect(try await news.handshake(path: "/subscribe/news").status == 101)
                try await RawClient.withConnection(port: port) { api in
                    let commands =
                        (0..<50).map { #"{"publish":{"channel":"news","data":"m\#($0)"}}"# }
                        + [
                            #"{"publish":{"channel":"room:x","data":"no"}}"#,
                            #"{"publish":{"channel":"switchboard:x","data":"no"}}"#,
                        ]
                        + [#"{"publish":{"channel":"news","data":"last"}}"#]
                    let answer = try await api.api(
                        "POST", "/api/v1/batch", json: #"{"commands":[\#(commands.joined(separator: ","))]}"#)
                    #expect(answer.status == 200)
                    let replies = try #require(answer.json["replies"] as? [[String: Any]])
                    #expect(replies.count == 53)
                    #expect(replies.prefix(50).allSatisfy { $0["published"] as? Int == 1 })
                    #expect(errorCode(replies[50]) == "room_channel")
                    #expect(errorCode(replies[51]) == "reserved_channel")
                    #expect(replies[52]["published"] as? Int == 1)
                    for index in 0..<50 { #expect(try await news.readFrame()?.text == "m\(index)") }
                    #expect(try await news.readFrame()?.text == "last")
                    // A malformed command refuses the batch whole: nothing of it is published.
                    for (bad, code) in [
                        (#"{"nothing":{}}"#, "invalid_command"),
                        (#"{"publish":{"channel":"a b","data":1}}"#, "invalid_channel"),
                    ] {
                        let refused = try await api.api(
                            "POST", "/api/v1/batch",
                            json: #"{"commands":[{"publish":{"channel":"news","data":"never"}},\#(bad)]}"#)
                        #expect(refused.status == 400 && errorCode(refused.json) == code)
                        let message = (refused.json["error"] as? [String: Any])?["message"] as? String
                        #expect(message?.hasPrefix("commands[1]") == true, "\(message ?? "")")
                    }
                    let after = try await api.api(
                        "POST", "/api/v1/publish", json: #"{"channel":"news","data":"after"}"#)
                    #expect(after.status == 200)
                    #expect(try await news.readFrame()?.text == "after", "the refused batches published nothing")
                    let huge = try await api.api(
                        "POST", "/api/v1/batch",
                        json: #"{"commands":[],"pad":"\#(String(repeating: "x", count: 1_100_000))"}"#)
                    #expect(huge.status == 413 && errorCode(huge.json) == "too_large", "past 1 MiB, in JSON too")
                    let tooMany = (0...1000).map { _ in #"{"publish":{"channel":"news","data":"x"}}"# }
                    let refused = try await api.api(
                        "POST", "/api/v1/batch", json: #"{"commands":[\#(tooMany.joined(separator: ","))]}"#)
                    #expect(refused.status == 400 && errorCode(refused.json) == "too_many_commands")
                }
            }
        }
    }

    @Test("history and presence of a room; a key scoped to team-* rooms reads those only")
    func historyAndPresence() async throws {
        try await withServer(try await apiApp()) { _, port in
            try await RawClient.withConnection(port: port) { alice in
                try await alice.member(token: try await apiToken("42", name: "Alice"), rooms: ["team-red"])
                for index in 0..<5 {
                    try await alice.sendJSON(["type": "say", "room": "team-red", "text": "t\(index)"])
                    #expect(try await alice.readJSON()["text"] as? String == "t\(index)")
                }
                try await RawClient.withConnection(port: port) { api in
                    let all = try await api.api("GET", "/api/v1/rooms/team-red/history", key: supportKey)
                    #expect(all.status == 200 && all.json["gap"] as? Bool == false)
                    let messages = try #require(all.json["messages"] as? [[String: Any]])
                    #expect(messages.compactMap { $0["text"] as? String } == ["t0", "t1", "t2", "t3", "t4"])
                    #expect(messages.first?["user"] as? String == "42")
                    let last = try await api.api("GET", "/api/v1/rooms/team-red/history?limit=2", key: supportKey)
                    let lastTexts = (last.json["messages"] as? [[String: Any]])?.compactMap { $0["text"] as? String }
                    #expect(lastTexts == ["t3", "t4"], "without since: the most recent, at most limit")
                    let since = try #require(messages[1]["id"] as? String)
                    let page = try await api.api(
                        "GET", "/api/v1/rooms/team-red/history?since=\(since)&limit=2", key: supportKey)
                    let texts = (page.json["messages"] as? [[String: Any]])?.compactMap { $0["text"] as? String }
                    #expect(texts == ["t2", "t3"] && page.json["more"] as? Bool == true)
                    let presence = try await api.api("GET", "/api/v1/rooms/team-red/presence", key: supportKey)
                    #expect(presence.status == 200)
                    let users = try #require(presence.json["users"] as? [[String: Any]])
                    #expect(users.count == 1 && users[0]["user"] as? String == "42")
                    #expect(users[0]["nick"] as? String == "Alice" && users[0]["connections"] as? Int == 1)
                    #expect((presence.json["members"] as? [Any])?.count == 1)
                    let other = try await api.api("GET", "/api/v1/rooms/lobby/presence", key: supportKey)
                    #expect(other.status == 403 && errorCode(other.json) == "forbidden")
                    let bad = try await api.api("GET", "/api/v1/rooms/team-red/history?limit=0", key: supportKey)
                    #expect(bad.status == 400 && errorCode(bad.json) == "invalid_limit")
                    let badRoom = try await api.api("GET", "/api/v1/rooms/a%20b/history", key: supportKey)
                    #expect(badRoom.status == 400 && errorCode(badRoom.json) == "invalid_room")
                }
            }
        }
    }

    @Test("info and channels: this node's figures; channels filtered by pattern and by the key's scope")
    func infoAndChannels() async throws {
        try await withServer(try await apiApp()) { _, port in
            try await RawClient.withConnection(port: port) { alice in
                try await alice.member(token: try await apiToken("42"), rooms: ["lobby", "team-red"])
                try await RawClient.withConnection(port: port) { news in
                    #expect(try await news.handshake(path: "/subscribe/news").status == 101)
                    try await RawClient.withConnection(port: port) { api in
                        let info = try await api.api("GET", "/api/v1/info")
                        #expect(info.status == 200 && info.json["partial"] as? Bool == false)
                        let nodes = try #require(info.json["nodes"] as? [[String: Any]])
                        #expect(nodes.count == 1)
                        #expect(nodes[0]["connections"] as? Int == 2 && nodes[0]["users"] as? Int == 1)
                        #expect(
                            nodes[0]["rooms"] as? Int == 2 && nodes[0]["version"] as? String == ClusterAnswers.version)
                        let channels = try await api.api("GET", "/api/v1/channels")
                        let listed = try #require(channels.json["channels"] as? [[String: Any]])
                        #expect(
                            listed.compactMap { $0["channel"] as? String } == ["news", "room:lobby", "room:team-red"])
                        #expect(listed.allSatisfy { $0["subscribers"] as? Int == 1 })
                        #expect(channels.json["nodes"] as? Int == 1)
                        let rooms = try await api.api("GET", "/api/v1/channels?pattern=room%3A*")
                        let names = (rooms.json["channels"] as? [[String: Any]])?.compactMap {
                            $0["channel"] as? String
                        }
                        #expect(names == ["room:lobby", "room:team-red"])
                    }
                }
            }
        }
    }

    @Test("disconnect closes every socket of the user with the code and reason; unsubscribe takes them out of a room")
    func disconnectAndUnsubscribe() async throws {
        try await withServer(try await apiApp()) { _, port in
            try await RawClient.withConnection(port: port) { first in
                try await first.member(token: try await apiToken("7"), rooms: ["lobby", "team-red"])
                try await RawClient.withConnection(port: port) { second in
                    try await second.member(token: try await apiToken("7"), rooms: ["lobby"])
                    try await RawClient.withConnection(port: port) { other in
                        try await other.member(token: try await apiToken("8"), rooms: ["lobby"])
                        try await RawClient.withConnection(port: port) { api in
                            let out = try await api.api(
                                "POST", "/api/v1/users/7/unsubscribe", json: #"{"room":"lobby"}"#)
                            #expect(out.status == 200 && out.json["unsubscribed"] as? Int == 2)
                            for socket in [first, second] {
                                let left = try await socket.readJSON()
                                #expect(left["type"] as? String == "left" && left["room"] as? String == "lobby")
                                #expect(left["reason"] as? String == "unsubscribed")
                            }
                            let members = try await api.api("GET", "/api/v1/rooms/lobby/presence")
                            let users = (members.json["users"] as? [[String: Any]])?.compactMap {
                                $0["user"] as? String
                            }
                            #expect(users == ["8"])

                            let gone = try await api.api(
                                "POST", "/api/v1/users/7/disconnect", json: #"{"code":4403,"reason":"banned"}"#)
                            #expect(gone.status == 200 && gone.json["disconnected"] as? Int == 2)
                            #expect(gone.json["nodes"] as? Int == 1 && gone.json["partial"] as? Bool == false)
                            for socket in [first, second] {
                                do {
                                    while true { _ = try await socket.readJSON() }
                                } catch let closed as ClosedByServer {
                                    #expect(closed.code == 4403 && closed.reason == "banned")
                                }
                            }
                            let none = try await api.api("POST", "/api/v1/users/nobody/disconnect")
                            #expect(none.status == 200 && none.json["disconnected"] as? Int == 0)
                            let badCode = try await api.api(
                                "POST", "/api/v1/users/8/disconnect", json: #"{"code":1006}"#)
                            #expect(badCode.status == 400 && errorCode(badCode.json) == "invalid_code")
                            let null = try await api.api(
                                "POST", "/api/v1/users/8/disconnect", json: #"{"reason":null}"#)
                            #expect(null.status == 400 && errorCode(null.json) == "invalid_json", "null is not absent")
                            try await other.sendJSON(["type": "say", "room": "lobby", "text": "still here"])
                            #expect(try await other.readJSON()["text"] as? String == "still here")
                        }
                    }
                }
            }
        }
    }

    @Test("Cluster operations are scoped: a notify:* key with every operation can disconnect no one and read no info")
    func clusterScopes() async throws {
        try await withServer(try await apiApp()) { _, port in
            try await RawClient.withConnection(port: port) { alice in
                try await alice.member(token: try await apiToken("7"), rooms: ["lobby", "team-red"])
                try await RawClient.withConnection(port: port) { api in
                    for (method, path, json) in [
                        ("GET", "/api/v1/info", nil), ("POST", "/api/v1/users/7/disconnect", "{}"),
                        ("POST", "/api/v1/users/7/unsubscribe", #"{"room":"lobby"}"#),
                    ] {
                        let refused = try await api.api(method, path, json: json, key: notifyKey)
                        #expect(refused.status == 403 && errorCode(refused.json) == "forbidden", "\(path)")
                    }
                    let channels = try await api.api("GET", "/api/v1/channels", key: notifyKey)
                    #expect((channels.json["channels"] as? [Any])?.isEmpty == true, "room channels are not notify:*")
                    // A moderator of user 7 and the lobby: that user, that room, nothing else.
                    let otherRoom = try await api.api(
                        "POST", "/api/v1/users/7/unsubscribe", json: #"{"room":"team-red"}"#, key: moderatorKey)
                    #expect(otherRoom.status == 403)
                    let otherUser = try await api.api("POST", "/api/v1/users/8/disconnect", key: moderatorKey)
                    #expect(otherUser.status == 403)
                    let info = try await api.api("GET", "/api/v1/info", key: moderatorKey)
                    #expect(info.status == 403)
                    let out = try await api.api(
                        "POST", "/api/v1/users/7/unsubscribe", json: #"{"room":"lobby"}"#, key: moderatorKey)
                    #expect(out.status == 200 && out.json["unsubscribed"] as? Int == 1)
                    let gone = try await api.api("POST", "/api/v1/users/7/disconnect", key: moderatorKey)
                    #expect(gone.status == 200 && gone.json["disconnected"] as? Int == 1)
                }
            }
        }
    }

    @Test("Wrong keys from one address: 20 answered 401, then 429 without a comparison; logged once, with the count")
    func wrongKeysThrottled() async throws {
        let logs = RecordedLogs()
        var configuration = try apiConfiguration()
        configuration.rateLimits.limitsLoopback = true  // the tests' client is 127.0.0.1
        // A burst of 20, then one in 20 s (the node's default is one a second): no token comes back while the test
        // runs, however a loaded machine stretches it.
        configuration.failedApiKeys = .init(rate: 0.05, burst: 20)
        let app = ChatApplication.make(
            topics: Topics(broker: LocalBroker(), logger: testLogger), configuration: configuration,
            logger: logs.logger())
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { api in
                var unauthorized = 0
                while try await api.api("GET", "/api/v1/info", key: "guess-\(unauthorized)-0123456789").status == 401 {
                    unauthorized += 1
                    if unauthorized > 100 { break }
                }
                #expect(unauthorized == 20, "\(unauthorized) wrong keys answered 401")
                let right = try await api.api("GET", "/api/v1/info")
                #expect(right.status == 429, "the address waits, whatever key it tries next")
                let retryAfter = right.response.header("Retry-After").flatMap { Int($0) }
                #expect(retryAfter.map { (1...20).contains($0) } == true, "Retry-After: \(retryAfter ?? -1)")
            }
        }
        let lines = logs.lines(containing: "Wrong API keys")
        #expect(lines.count == 1 && lines.first?.metadata["address"] == "127.0.0.1", "\(lines.map(\.metadata))")
    }

    @Test("openapi.json is served without a key and is the file in docs/")
    func openAPI() async throws {
        try await withServer(try await apiApp()) { _, port in
            try await RawClient.withConnection(port: port) { api in
                let answer = try await api.api("GET", "/api/v1/openapi.json", key: nil)
                #expect(answer.status == 200 && answer.json["openapi"] as? String == "3.1.0")
                let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                    .appendingPathComponent("../../docs/openapi.json")
                let document = try String(contentsOf: file, encoding: .utf8)
                #expect(answer.response.body == document)
                let paths = try #require(answer.json["paths"] as? [String: Any])
                #expect(paths.count == 9)
            }
        }
    }

    @Test("/subscribe refuses the nodes' own switchboard: channels")
    func reservedChannels() async throws {
        try await withServer(try await apiApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                let status = try await client.handshake(path: "/subscribe/switchboard:control").status
                #expect(status == 403)
            }
        }
    }
}
