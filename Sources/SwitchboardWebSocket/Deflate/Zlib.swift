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
    }

    /// Decompresses all of `input` into `output`, refusing to let `output` grow past `limit` bytes.
    ///
    /// - Returns: `false` when the output would pass the limit (the caller closes with 1009).
    /// - Throws: ``ZlibError`` for data that is not valid deflate.
    func inflate(_ input: ByteBuffer, into output: inout ByteBuffer, limit: Int) throws -> Bool {
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
                    let produced = try withUnsafeMutablePointer(to: &probe) { pointer -> Int in
                        self.stream.pointee.next_out = pointer
                        self.stream.pointee.avail_out = 1
                        let result = CSwitchboardZlib.inflate(self.stream, Z_SYNC_FLUSH)
                        try Self.check(result)
                        return 1 - Int(self.stream.pointee.avail_out)
                    }
                    if produced > 0 { return false }
                    if self.stream.pointee.avail_in == 0 { return true }
                    continue
                }
                let chunk = min(room, 16 * 1024)
                output.reserveCapacity(minimumWritableBytes: chunk)
                let (written, result) = output.withUnsafeMutableWritableBytes { outBytes -> (Int, Int32) in
                    self.stream.pointee.next_out = outBytes.baseAddress?.assumingMemoryBound(to: Bytef.self)
                    self.stream.pointee.avail_out = uInt(chunk)
                    let result = CSwitchboardZlib.inflate(self.stream, Z_SYNC_FLUSH)
                    return (chunk - Int(self.stream.pointee.avail_out), result)
                }
                output.moveWriterIndex(forwardBy: written)
                try Self.check(result)
                if self.stream.pointee.avail_in == 0 && written < chunk { return true }
                if result == Z_BUF_ERROR && written == 0 { return true }
            }
        }
    }

    private static func check(_ result: Int32) throws {
        switch result {
        case Z_OK, Z_STREAM_END, Z_BUF_ERROR: return
        default: throw ZlibError(code: result, message: "invalid deflate data")
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
