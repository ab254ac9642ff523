import Foundation
import NIOCore
import SwitchboardNode
import SwitchboardRedis
import SwitchboardRooms
import SwitchboardRoomsRedis
import SwitchboardTesting
import Testing

@Suite(
    "Independent Redis shards",
    .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason)),
    .timeLimit(.minutes(2))
)
struct RedisShardsTests {
    @Test(
        "Two nodes over three shards: rooms spread over them, every message and history everywhere, keys on their room's shard"
    )
    func spread() async throws {
        let servers = [try await RedisServerProcess(), try await RedisServerProcess(), try await RedisServerProcess()]
        defer { for server in servers { server.stop() } }
        let nodeA = try await RedisNode(shards: servers)
        let nodeB = try await RedisNode(shards: servers)
        let rooms = (0..<12).map { "room\($0)" }
        // The rooms land on every shard.
        #expect(Set(rooms.map { nodeA.shards.shard(of: RoomChannel.name(of: $0)) }) == [0, 1, 2])
        try await withServer(nodeA.app()) { _, portA in
            try await withServer(nodeB.app()) { _, portB in
                try await RawClient.withConnection(port: portA) { alice in
                    try await alice.openRooms()
                    for room in rooms { _ = try await alice.join(room) }
                    try await RawClient.withConnection(port: portB) { bob in
                        try await bob.openRooms()
                        for room in rooms { _ = try await bob.join(room) }
                        for room in rooms {
                            try await alice.sendJSON(["type": "say", "room": room, "text": "to \(room)"])
                        }
                        var heard: Set<String> = []
                        while heard.count < rooms.count {
                            let frame = try await bob.readJSON()
                            if frame["type"] as? String == "message" { heard.insert(frame["text"] as? String ?? "") }
                        }
                        #expect(heard == Set(rooms.map { "to \($0)" }))
                    }
                }
                // History from every shard, on the other node.
                try await RawClient.withConnection(port: portB) { carol in
                    try await carol.openRooms()
                    for room in rooms {
                        let joined = try await carol.join(room)
                        let texts = (joined["messages"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
                        #expect(texts == ["to \(room)"], "\(room)")
                    }
                }
            }
        }
        // Each room's stream is on its shard, and on no other.
        for room in rooms {
            let home = nodeA.shards.shard(of: RoomChannel.name(of: room))
            for (index, client) in nodeA.shards.clients.enumerated() {
                let exists = try await client.send(RESPCommand("EXISTS", RoomKeys.stream(room)))
                #expect(exists == .integer(index == home ? 1 : 0), "\(room) on shard \(index)")
            }
        }
        await nodeA.stop()
        await nodeB.stop()
    }

    @Test(
        "One shard down: its rooms fail to join (and /readyz names it), the others chat on; back, its rooms work again")
    func shardDown() async throws {
        let servers = [try await RedisServerProcess(), try await RedisServerProcess()]
        defer { for server in servers { server.stop() } }
        let node = try await RedisNode(shards: servers, commandTimeout: .seconds(1))
        let rooms = (0..<8).map { "r\($0)" }
        let onFirst = rooms.filter { node.shards.shard(of: RoomChannel.name(of: $0)) == 0 }
        let onSecond = rooms.filter { node.shards.shard(of: RoomChannel.name(of: $0)) == 1 }
        #expect(!onFirst.isEmpty && !onSecond.isEmpty)
        try await withServer(node.app()) { _, port in
            await servers[1].kill()
            #expect(await node.broker.unreadiness(timeout: .seconds(1))?.contains("shard 1") == true)
            try await RawClient.withConnection(port: port) { client in
                try await client.openRooms()
                for room in onFirst { #expect(try await client.join(room)["type"] as? String == "joined") }
                try await client.sendJSON(["type": "join", "room": onSecond[0]])
                #expect(try await client.readJSON()["code"] as? String == "unavailable")
            }
            try await servers[1].restart()
            #expect(await node.waitUntilServing())
            try await RawClient.withConnection(port: port) { client in
                try await client.openRooms()
                #expect(try await client.join(onSecond[0])["type"] as? String == "joined")
            }
        }
        await node.stop()
    }
}
