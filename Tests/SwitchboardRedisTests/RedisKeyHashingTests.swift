import NIOCore
import Testing

@testable import SwitchboardRedis

@Suite("Key placement: Redis Cluster slots and jump consistent hash")
struct RedisKeyHashingTests {
    @Test("CRC16 (XMODEM) and slots as Redis Cluster computes them; hash tags share a slot")
    func slots() {
        #expect(RedisKeyHashing.crc16(Substring("123456789").utf8) == 0x31C3)
        // From Redis's documentation and `CLUSTER KEYSLOT` on Redis 7.0.15.
        #expect(RedisKeyHashing.slot("foo") == 12182)
        #expect(RedisKeyHashing.slot("bar") == 5061)
        #expect(RedisKeyHashing.slot("{user1000}.following") == RedisKeyHashing.slot("{user1000}.followers"))
        #expect(RedisKeyHashing.slot("{user1000}.following") == RedisKeyHashing.slot("user1000"))
        // An empty tag is no tag: the whole key is hashed.
        #expect(RedisKeyHashing.slot("foo{}{bar}") != RedisKeyHashing.slot("bar"))
        #expect(RedisKeyHashing.slot("switchboard:{room:lobby}:stream") == RedisKeyHashing.slot("room:lobby"))
    }

    @Test("The table-driven CRC16 equals the bit-at-a-time definition: each ASCII byte, random keys, any UTF-8")
    func crc16Table() {
        func bitwise(_ bytes: some Sequence<UInt8>) -> UInt16 {
            var crc: UInt16 = 0
            for byte in bytes {
                crc ^= UInt16(byte) << 8
                for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
            }
            return crc
        }
        // Scalars of one to four UTF-8 bytes, so bytes over 0x7F (lead and continuation bytes) come up too.
        let scalars = (0..<128).map { Unicode.Scalar(UInt8($0)) } + ["é", "ж", "€", "中", "😀", "\u{10FFFF}"]
        let keys =
            scalars.map { String($0) }
            + (0..<2_000).map { _ in
                String(String.UnicodeScalarView((0..<Int.random(in: 0..<40)).map { _ in scalars.randomElement()! }))
            }
        for key in keys {
            #expect(RedisKeyHashing.crc16(Substring(key).utf8) == bitwise(key.utf8))
        }
    }

    @Test("Jump hash: every shard gets a share; adding a shard moves about 1/n of the keys, all to the new one")
    func jumpHash() {
        let keys = (0..<10_000).map { "room:r\($0)" }
        var counts = [0, 0, 0]
        for key in keys { counts[RedisKeyHashing.shard(key, of: 3)] += 1 }
        #expect(counts.allSatisfy { (2_800...3_900).contains($0) }, "\(counts)")
        var moved = 0
        for key in keys {
            let before = RedisKeyHashing.shard(key, of: 3)
            let after = RedisKeyHashing.shard(key, of: 4)
            if before != after {
                moved += 1
                #expect(after == 3, "a key moves only to the new shard")
            }
        }
        #expect((1_900...3_100).contains(moved), "\(moved) of 10,000 moved (about a quarter)")
        #expect(RedisKeyHashing.shard("switchboard:{room:x}:presence", of: 5) == RedisKeyHashing.shard("room:x", of: 5))
        #expect(RedisKeyHashing.shard("anything", of: 1) == 0)
    }
}

@Suite("Cluster topology and redirections, parsed")
struct ClusterTopologyTests {
    @Test("CLUSTER SHARDS: each shard's online primary owns its slot ranges; a failed one is skipped")
    func shards() throws {
        func node(_ port: Int, _ role: String, _ health: String) -> RESPValue {
            .array([
                .bulkString(.init(string: "id")), .bulkString(.init(string: "n\(port)")),
                .bulkString(.init(string: "port")), .integer(Int64(port)),
                .bulkString(.init(string: "ip")), .bulkString(.init(string: "127.0.0.1")),
                .bulkString(.init(string: "endpoint")), .bulkString(.init(string: "127.0.0.1")),
                .bulkString(.init(string: "role")), .bulkString(.init(string: role)),
                .bulkString(.init(string: "health")), .bulkString(.init(string: health)),
            ])
        }
        func shard(_ ranges: [Int64], _ nodes: [RESPValue]) -> RESPValue {
            .array([
                .bulkString(.init(string: "slots")), .array(ranges.map { .integer($0) }),
                .bulkString(.init(string: "nodes")), .array(nodes),
            ])
        }
        let reply = RESPValue.array([
            shard([0, 5460], [node(7001, "master", "online"), node(7004, "replica", "online")]),
            shard([5461, 10922], [node(7002, "master", "fail"), node(7005, "master", "online")]),
            shard([10923, 12000, 12001, 16383], [node(7003, "master", "online")]),
        ])
        let topology = try #require(ClusterTopology.fromShards(reply))
        #expect(topology.coversAllSlots)
        #expect(topology.owner(of: 0)?.port == 7001 && topology.owner(of: 5460)?.port == 7001)
        #expect(topology.owner(of: 6000)?.port == 7005, "the promoted replica, not the failed primary")
        #expect(topology.owner(of: 16383)?.port == 7003)
        let partial = RESPValue.array([shard([0, 100], [node(7001, "master", "fail")])])
        #expect(ClusterTopology.fromShards(partial)?.coversAllSlots == false)
    }

    @Test("CLUSTER SLOTS, and MOVED / ASK replies")
    func slotsAndRedirections() throws {
        let reply = RESPValue.array([
            .array([
                .integer(0), .integer(16383),
                .array([.bulkString(.init(string: "10.0.0.1")), .integer(7000), .bulkString(.init(string: "id"))]),
            ])
        ])
        let topology = try #require(ClusterTopology.fromSlots(reply))
        #expect(topology.coversAllSlots && topology.owner(of: 42)?.host == "10.0.0.1")
        let moved = ClusterRedirection(RedisError(.serverError, "MOVED 3999 127.0.0.1:6381"))
        #expect(moved == ClusterRedirection(kind: .moved, slot: 3999, host: "127.0.0.1", port: 6381))
        let ask = ClusterRedirection(RedisError(.serverError, "ASK 12 [::1]:7000"))
        #expect(ask?.kind == .ask && ask?.host == "::1" && ask?.port == 7000)
        #expect(ClusterRedirection(RedisError(.serverError, "ERR unknown")) == nil)
        #expect(ClusterRedirection(RedisError(.timeout, "MOVED 1 a:1")) == nil)
    }
}
