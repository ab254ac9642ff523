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
