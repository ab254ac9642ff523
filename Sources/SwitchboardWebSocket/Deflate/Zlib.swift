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
    /// The current message ended its deflate stream with a final block: the rest of it (the `00 00 FF FF` tail the
    /// receiver appends) is ignored until ``endMessage()``.
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

    /// Marks the end of a message: after a message that ended its stream, the next one starts a new stream.
    func endMessage() {
        self.streamEnded = false
    }

    /// Decompresses all of `input` into `output`, refusing to let `output` grow past `limit` bytes.
    ///
    /// A block with BFINAL set ends zlib's stream (RFC 7692 §7.2.3.3 lets a sender end a message that way): the rest of
    /// the message, the `00 00 FF FF` tail included, is ignored, as zlib-based receivers do, and the next message
    /// starts a new stream. Every pass of the loop consumes input or produces output, or the data is refused: a peer's
    /// bytes can never make it spin.
    ///
    /// - Returns: `false` when the output would pass the limit (the caller closes with 1009).
    /// - Throws: ``ZlibError`` for data that is not valid deflate.
    func inflate(_ input: ByteBuffer, into output: inout ByteBuffer, limit: Int) throws -> Bool {
        if self.streamEnded { return true }
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

    /// Checks one `inflate` call: an error throws; the end of a stream starts a new one; a call that neither
    /// consumed nor produced anything means the data cannot go on, and throws rather than loop.
    private func settle(_ result: Int32, consumed: Bool, produced: Bool) throws {
        switch result {
        case Z_STREAM_END:
            inflateReset(self.stream)
            self.streamEnded = true
            self.stream.pointee.avail_in = 0
        case Z_OK, Z_BUF_ERROR:
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
