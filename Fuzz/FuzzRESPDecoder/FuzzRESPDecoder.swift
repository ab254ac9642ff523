import NIOCore
import SwitchboardRedis

/// Bytes from a Redis server (or whatever answers on its port): RESP2 and RESP3 values, nested, in reads of the
/// sizes the first byte picks, through the decoder with small limits (so that the fuzzer reaches them).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRESPDecoder(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = UnsafeBufferPointer(start: start, count: count)
    guard let first = input.first else { return 0 }
    let readSize = max(1, Int(first))
    var decoder = RESPDecoder(
        limits: RESPLimits(maxBulkLength: 4096, maxAggregateLength: 256, maxNesting: 8, maxLineLength: 1024))
    var buffer = ByteBuffer()
    var offset = 1
    while offset < input.count {
        let end = min(input.count, offset + readSize)
        buffer.writeBytes(input[offset..<end])
        offset = end
        do {
            while let value = try decoder.decode(buffer: &buffer) {
                _ = (value.string, value.elements?.count)
            }
        } catch {
            return 0  // a protocol error: the client closes the connection here
        }
    }
    _ = try? decoder.decodeLast(buffer: &buffer, seenEOF: true)
    return 0
}
