/// How a key or channel is placed: Redis Cluster's slots (CRC16 of the hash tag, mod 16384) and the jump consistent
/// hash that spreads keys over independent shards (as Centrifugo does).
public enum RedisKeyHashing {
    /// Redis Cluster's slot count.
    public static let slotCount = 16384

    /// The part of `key` that is hashed: the text between the first `{` and the next `}` when that is not empty
    /// (a hash tag), else the whole key; as Redis Cluster does, so keys that share a tag share a slot.
    public static func hashTag(_ key: Substring.UTF8View) -> Substring.UTF8View {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")) else { return key }
        let afterOpen = key.index(after: open)
        guard let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen else { return key }
        return key[afterOpen..<close]
    }

    /// The Redis Cluster slot of `key` (0 to 16383).
    public static func slot(_ key: String) -> Int {
        Int(self.crc16(self.hashTag(Substring(key).utf8)) % UInt16(self.slotCount))
    }

    /// The shard of `key` among `shards`: jump consistent hash (Lamping and Veach) of a 64-bit hash of its hash tag,
    /// so adding a shard moves only a share of the keys, and a room's keys stay with its channel.
    public static func shard(_ key: String, of shards: Int) -> Int {
        guard shards > 1 else { return 0 }
        var state = self.fnv1a(self.hashTag(Substring(key).utf8))
        var bucket: Int64 = -1
        var next: Int64 = 0
        while next < Int64(shards) {
            bucket = next
            state = state &* 2_862_933_555_777_941_757 &+ 1
            next = Int64(Double(bucket + 1) * (Double(Int64(1) << 31) / Double((state >> 33) + 1)))
        }
        return Int(bucket)
    }

    /// CRC16-CCITT (XMODEM), the variant Redis Cluster uses; a byte at a time from a table (every publish in a
    /// cluster hashes its channel).
    static func crc16(_ bytes: Substring.UTF8View) -> UInt16 {
        var crc: UInt16 = 0
        self.crc16Table.withUnsafeBufferPointer { table in
            for byte in bytes {
                crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
            }
        }
        return crc
    }

    /// The CRC of each byte value: its eight shifts done once.
    private static let crc16Table: [UInt16] = (0..<256).map { (value: Int) -> UInt16 in
        var crc = UInt16(value) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }

    /// FNV-1a, 64 bits.
    static func fnv1a(_ bytes: Substring.UTF8View) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
