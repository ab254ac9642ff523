import NIOCore

/// XORs `bytes` with the 4-byte masking key (RFC 6455 §5.3), eight bytes at a time.
///
/// - Parameter offset: How many payload bytes came before `bytes` in the same frame, so that masking can resume
///   mid-frame.
func applyMask(_ key: UInt32, to bytes: UnsafeMutableRawBufferPointer, offset: Int = 0) {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return }
    // The key as it lies in memory, rotated so that byte 0 of `bytes` meets key byte `offset % 4`.
    var keyBytes = key.bigEndian
    let keyArray = withUnsafeBytes(of: &keyBytes) { Array($0) }
    let rotated = (0..<4).map { keyArray[($0 + offset) % 4] }
    var index = 0
    let count = bytes.count
    if count >= 8 {
        var wide: UInt64 = 0
        withUnsafeMutableBytes(of: &wide) { w in
            for i in 0..<8 { w[i] = rotated[i % 4] }
        }
        while index + 8 <= count {
            let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            base.storeBytes(of: word ^ wide, toByteOffset: index, as: UInt64.self)
            index += 8
        }
    }
    while index < count {
        base.storeBytes(
            of: base.load(fromByteOffset: index, as: UInt8.self) ^ rotated[index % 4], toByteOffset: index,
            as: UInt8.self)
        index += 1
    }
}

extension ByteBuffer {
    /// Unmasks the readable bytes in place.
    mutating func unmask(with key: UInt32, offset: Int = 0) {
        self.withUnsafeMutableReadableBytes { applyMask(key, to: $0, offset: offset) }
    }
}
