import CSwitchboardZlib
import NIOCore

/// Why zlib refused data.
struct ZlibError: Error, CustomStringConvertible {
    let code: Int32
    let message: String
    var description: String { "zlib error \(self.code): \(self.message)" }
}

/// A raw-deflate decompressor (RFC 1951 without zlib framing) whose output is capped.
final class Inflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
    /// The last block inflated had BFINAL set, so zlib's stream ended: more compressed data starts a new stream,
    /// and the `00 00 FF FF` tail the receiver appends to the message is not data (it is skipped).
    private var streamEnded = false
    /// `inflate` calls in a row that neither consumed input nor produced output. zlib may still be working on bits it
    /// already holds (a block header), so a few are normal; many mean the data cannot go on.
    private var idleCalls = 0

    init() throws {
        self.stream.initialize(to: z_stream())
        let result = switchboard_inflateInit2(self.stream, -15)
        guard result == Z_OK else {
            self.stream.deallocate()
            throw ZlibError(code: result, message: "inflateInit2 failed")
        }
    }

    deinit {
        inflateEnd(self.stream)
        self.stream.deinitialize(count: 1)
        self.stream.deallocate()
    }

    /// Forgets the window (no context takeover).
    func reset() {
        inflateReset(self.stream)
        self.streamEnded = false
    }

    /// Skips the input left if it is only the end-of-message tail and the stream just ended: after a final block the
    /// tail is no deflate data (alone, it is not a valid stream).
    private func skipTailAfterStreamEnd() {
        guard self.streamEnded, self.stream.pointee.avail_in == 4, let next = self.stream.pointee.next_in,
            next[0] == 0x00, next[1] == 0x00, next[2] == 0xFF, next[3] == 0xFF
        else { return }
        self.stream.pointee.avail_in = 0
    }

    /// Decompresses all of `input` into `output`, refusing to let `output` grow past `limit` bytes.
    ///
    /// A block with BFINAL set ends zlib's stream (RFC 7692 lets a sender flush that way): compressed data after it,
    /// in this message or the next, starts a new stream, and the `00 00 FF FF` tail appended after it is skipped.
    /// A pass of the loop that neither consumes input nor produces output is counted, and too many in a row refuse
    /// the data: a peer's bytes can never make it spin.
    ///
    /// - Returns: `false` when the output would pass the limit (the caller closes with 1009).
    /// - Throws: ``ZlibError`` for data that is not valid deflate.
    func inflate(_ input: ByteBuffer, into output: inout ByteBuffer, limit: Int) throws -> Bool {
        self.idleCalls = 0
        var input = input
        return try input.withUnsafeMutableReadableBytes { inBytes -> Bool in
            self.stream.pointee.next_in = inBytes.baseAddress?.assumingMemoryBound(to: Bytef.self)
            self.stream.pointee.avail_in = uInt(inBytes.count)
            defer {
                self.stream.pointee.next_in = nil
                self.stream.pointee.avail_in = 0
            }
            while true {
                self.skipTailAfterStreamEnd()
                let room = limit - output.readableBytes
                if room <= 0 {
                    // Full: any further output means the message is too big.
                    if self.stream.pointee.avail_in == 0 { return true }
                    var probe: UInt8 = 0
                    let pending = self.stream.pointee.avail_in
                    let produced = try withUnsafeMutablePointer(to: &probe) { pointer -> Int in
                        self.stream.pointee.next_out = pointer
                        self.stream.pointee.avail_out = 1
                        let result = CSwitchboardZlib.inflate(self.stream, Z_SYNC_FLUSH)
                        try self.settle(result, consumed: pending != self.stream.pointee.avail_in, produced: false)
                        return 1 - Int(self.stream.pointee.avail_out)
                    }
                    if produced > 0 { return false }
                    if self.stream.pointee.avail_in == 0 { return true }
                    continue
                }
                let chunk = min(room, 16 * 1024)
                output.reserveCapacity(minimumWritableBytes: chunk)
                let pending = self.stream.pointee.avail_in
                let (written, result) = output.withUnsafeMutableWritableBytes { outBytes -> (Int, Int32) in
                    self.stream.pointee.next_out = outBytes.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    self.stream.pointee.avail_out = uInt(chunk)
                    let result = CSwitchboardZlib.inflate(self.stream, Z_SYNC_FLUSH)
                    return (chunk - Int(self.stream.pointee.avail_out), result)
                }
                output.moveWriterIndex(forwardBy: written)
                if result == Z_BUF_ERROR && written == 0 { return true }
                try self.settle(result, consumed: pending != self.stream.pointee.avail_in, produced: written > 0)
                if self.stream.pointee.avail_in == 0 && written < chunk { return true }
            }
        }
    }

    /// Checks one `inflate` call: an error throws; the end of a stream starts a new one (a reset clears zlib's bit
    /// buffer, so the next end needs new input); calls that neither consume nor produce are counted, and 64 in a row
    /// throw rather than loop.
    private func settle(_ result: Int32, consumed: Bool, produced: Bool) throws {
        switch result {
        case Z_STREAM_END:
            inflateReset(self.stream)
            self.streamEnded = true
        case Z_OK, Z_BUF_ERROR:
            if consumed { self.streamEnded = false }
            self.idleCalls = consumed || produced ? 0 : self.idleCalls + 1
            guard self.idleCalls < 64 else {
                throw ZlibError(code: result, message: "deflate data that makes no progress")
            }
        default:
            throw ZlibError(code: result, message: "invalid deflate data")
        }
    }
}

/// A raw-deflate compressor that ends each message with a sync flush, its `00 00 FF FF` tail removed (RFC 7692 §7.2.1).
final class Deflater {
    private let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)

    init(windowBits: Int, level: Int) throws {
        self.stream.initialize(to: z_stream())
        // memLevel 8 is zlib's default; windowBits is 9–15 (8 is not possible for raw deflate).
        let result = switchboard_deflateInit2(self.stream, Int32(level), -Int32(windowBits), 8)
        guard result == Z_OK else {
            self.stream.deallocate()
            throw ZlibError(code: result, message: "deflateInit2 failed")
        }
    }

    deinit {
        deflateEnd(self.stream)
        self.stream.deinitialize(count: 1)
        self.stream.deallocate()
    }

    func reset() {
        deflateReset(self.stream)
    }

    /// The compressed payload of a whole message.
    func compress(_ input: ByteBuffer, allocator: ByteBufferAllocator) throws -> ByteBuffer {
        var input = input
        var output = allocator.buffer(capacity: Int(deflateBound(self.stream, uLong(input.readableBytes))) + 8)
        try input.withUnsafeMutableReadableBytes { inBytes in
            self.stream.pointee.next_in = inBytes.baseAddress?.assumingMemoryBound(to: Bytef.self)
            self.stream.pointee.avail_in = uInt(inBytes.count)
            defer {
                self.stream.pointee.next_in = nil
                self.stream.pointee.avail_in = 0
            }
            repeat {
                output.reserveCapacity(minimumWritableBytes: 1024)
                let (written, result) = output.withUnsafeMutableWritableBytes { outBytes -> (Int, Int32) in
                    self.stream.pointee.next_out = outBytes.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    self.stream.pointee.avail_out = uInt(outBytes.count)
                    let result = deflate(self.stream, Z_SYNC_FLUSH)
                    return (outBytes.count - Int(self.stream.pointee.avail_out), result)
                }
                output.moveWriterIndex(forwardBy: written)
                guard result == Z_OK || result == Z_BUF_ERROR else {
                    throw ZlibError(code: result, message: "deflate failed")
                }
            } while self.stream.pointee.avail_out == 0
        }
        // Drop the empty stored block's 00 00 FF FF that the sync flush ended with.
        if output.readableBytes >= 4,
            output.getBytes(at: output.writerIndex - 4, length: 4) == [0x00, 0x00, 0xFF, 0xFF]
        {
            output.moveWriterIndex(to: output.writerIndex - 4)
        }
        return output
    }
}
