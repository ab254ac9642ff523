import Foundation
import NIOCore
import Switchboard
import SwitchboardAuth
import SwitchboardNode
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardTesting
import Testing

@testable import SwitchboardApi
@testable import SwitchboardRooms

@Suite(
    "Server API across two nodes on Redis", .timeLimit(.minutes(1)),
    .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason)))
struct ServerApiRedisTests {
    /// Two nodes with the API on one redis-server; `body` gets their ports.
    private func withTwoApiNodes(
        _ body: @escaping @Sendable (RedisServerProcess, Int, Int) async throws -> Void
    ) async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let auth = ChatAuthentication(
            verifier: try await TokenVerifier(keys: [try .hmac(secret: "the-server-api-tests-hmac-secret-of-32-bytes")]
            ),
            allowsAnonymous: true)
        var deadlined = try apiConfiguration(auth: auth)
        deadlined.clusterDeadline = .milliseconds(500)
        let configuration = deadlined
        try await withTwoNodes(on: redis, configuration: configuration) { _, portA, _, portB in
            try await body(redis, portA, portB)
        }
    }

    @Test("Either node answers for both: info, channels, presence; disconnect and unsubscribe reach the other node")
    func acrossNodes() async throws {
        try await self.withTwoApiNodes { _, portA, portB in
            try await RawClient.withConnection(port: portA) { onA in
                try await onA.member(token: try await apiToken("7", name: "Seven"), rooms: ["lobby"])
                try await RawClient.withConnection(port: portB) { onB in
                    try await onB.member(token: try await apiToken("7", name: "Seven"), rooms: ["lobby", "team-red"])
                    try await RawClient.withConnection(port: portB) { other in
                        try await other.member(token: try await apiToken("8"), rooms: ["lobby"])
                        try await RawClient.withConnection(port: portA) { api in
                            let info = try await api.api("GET", "/api/v1/info")
                            let nodes = try #require(info.json["nodes"] as? [[String: Any]])
                            #expect(nodes.count == 2 && info.json["partial"] as? Bool == false)
                            #expect(Set(nodes.compactMap { $0["connections"] as? Int }) == [1, 2])
                            #expect(Set(nodes.compactMap { $0["node"] as? String }).count == 2)

                            let channels = try await api.api("GET", "/api/v1/channels?pattern=room:*")
                            let counts = (channels.json["channels"] as? [[String: Any]] ?? []).reduce(
                                into: [String: Int]()
                            ) { $0[$1["channel"] as? String ?? ""] = $1["subscribers"] as? Int }
                            #expect(counts == ["room:lobby": 3, "room:team-red": 1], "summed over both nodes")
                            #expect(channels.json["nodes"] as? Int == 2)

                            let presence = try await api.api("GET", "/api/v1/rooms/lobby/presence")
                            let users = try #require(presence.json["users"] as? [[String: Any]])
                            let seven = users.first { $0["user"] as? String == "7" }
                            #expect(seven?["connections"] as? Int == 2, "one socket on each node")
                            #expect(users.count == 2)

                            let out = try await api.api(
                                "POST", "/api/v1/users/7/unsubscribe", json: #"{"room":"team-red"}"#)
                            #expect(out.json["unsubscribed"] as? Int == 1 && out.json["nodes"] as? Int == 2)
                            let left = try await onB.readJSON()
                            #expect(left["type"] as? String == "left" && left["room"] as? String == "team-red")

                            let gone = try await api.api("POST", "/api/v1/users/7/disconnect", json: "{}")
                            #expect(gone.json["disconnected"] as? Int == 2, "node A's socket and node B's")
                            for socket in [onA, onB] {
                                do {
                                    while true { _ = try await socket.readJSON() }
                                } catch let closed as ClosedByServer {
                                    #expect(closed.code == 4000 && closed.reason == "disconnected by the server")
                                }
                            }
                            try await other.sendJSON(["type": "say", "room": "lobby", "text": "left alone"])
                            #expect(try await other.readJSON()["text"] as? String == "left alone")
                        }
                    }
                }
            }
        }
    }

    @Test("A node that does not answer: the answer comes at the deadline, partial, with the nodes that did")
    func partial() async throws {
        try await self.withTwoApiNodes { redis, portA, _ in
            // A third subscriber of the control channel that never answers: a node that hangs.
            let silent = try await redis.connectedBroker()
            let subscription = try await silent.subscribeDirect(to: "switchboard:control") { _ in }
            try await RawClient.withConnection(port: portA) { api in
                let start = ContinuousClock.now
                let info = try await api.api("GET", "/api/v1/info")
                let elapsed = ContinuousClock.now - start
                #expect(info.status == 200 && info.json["partial"] as? Bool == true)
                #expect((info.json["nodes"] as? [Any])?.count == 2)
                #expect(elapsed >= .milliseconds(450) && elapsed < .seconds(3), "at the 500 ms deadline: \(elapsed)")
            }
            subscription.cancel()
            await silent.shutdown()
        }
    }
}
