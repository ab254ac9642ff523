import NIOCore
import Testing

@testable import SwitchboardWebSocket

@Suite("permessage-deflate")
struct DeflateNegotiationTests {
    private func negotiate(_ headers: [String], _ configuration: PerMessageDeflateConfiguration = .init()) -> String? {
        PerMessageDeflateNegotiation.negotiate(offers: headers, configuration: configuration)?.responseHeader
    }

    @Test(
        "Negotiation of the four parameters, several offers, invalid offers",
        arguments: [
            (["permessage-deflate"], "permessage-deflate; server_no_context_takeover"),
            (["permessage-deflate; client_max_window_bits"], "permessage-deflate; server_no_context_takeover"),
            (
                ["permessage-deflate; client_no_context_takeover"],
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            ),
            (
                ["permessage-deflate; server_max_window_bits=10"],
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"
            ),
            (
                ["permessage-deflate; server_max_window_bits=8"],
                "permessage-deflate; server_no_context_takeover; server_max_window_bits=8"
            ),
            (
                ["permessage-deflate; client_max_window_bits=9; server_no_context_takeover"],
                "permessage-deflate; server_no_context_takeover"
            ),
            // An invalid first offer falls back to the next one, in the same header or another.
            (
                ["permessage-deflate; server_max_window_bits=16, permessage-deflate"],
                "permessage-deflate; server_no_context_takeover"
            ),
            (
                ["x-webkit-deflate-frame", "permessage-deflate; client_no_context_takeover"],
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
            ),
            (["permessage-deflate; server_max_window_bits"], nil),
            (["permessage-deflate; server_max_window_bits=7"], nil),
            (["permessage-deflate; client_max_window_bits=16"], nil),
            (["permessage-deflate; unknown_parameter"], nil),
            (["permessage-deflate; server_no_context_takeover; server_no_context_takeover"], nil),
            (["permessage-deflate; client_no_context_takeover=1"], nil),
            (["x-other-extension"], nil),
        ] as [([String], String?)]
    )
    func negotiation(offers: [String], expected: String?) {
        #expect(self.negotiate(offers) == expected)
    }

    @Test("With context takeover allowed, the server keeps it unless asked not to")
    func contextTakeover() {
        let keep = PerMessageDeflateConfiguration(serverNoContextTakeover: false)
        #expect(self.negotiate(["permessage-deflate"], keep) == "permessage-deflate")
        #expect(
            self.negotiate(["permessage-deflate; server_no_context_takeover"], keep)
                == "permessage-deflate; server_no_context_takeover")
    }

    @Test("A window of 8 bits is accepted, and then the server sends uncompressed (zlib cannot make raw 8-bit deflate)")
    func windowBitsEight() throws {
        let agreed = try #require(
            PerMessageDeflateNegotiation.negotiate(
                offers: ["permessage-deflate; server_max_window_bits=8"], configuration: .init()))
        #expect(agreed.serverWindowBits == nil)
        let nine = try #require(
            PerMessageDeflateNegotiation.negotiate(
                offers: ["permessage-deflate; server_max_window_bits=9"], configuration: .init()))
        #expect(nine.serverWindowBits == 9)
    }

    @Test("A message that ends its deflate stream (BFINAL) inflates, and the next message starts a new stream")
    func finalBlock() throws {
        // Found by FuzzWebSocketFrames: the 00 00 FF FF tail after a final block made `inflate` loop forever.
        let inflater = try Inflater()
        var first = ByteBuffer()
        let final: [UInt8] = [203, 72, 205, 201, 201, 7, 0]  // "hello", zlib's Z_FINISH (raw deflate)
        #expect(try inflater.inflate(ByteBuffer(bytes: final), into: &first, limit: 1024))
        #expect(try inflater.inflate(ByteBuffer(bytes: [0x00, 0x00, 0xFF, 0xFF]), into: &first, limit: 1024))
        #expect(String(buffer: first) == "hello")
        var second = ByteBuffer()
        let synced: [UInt8] = [202, 72, 205, 201, 201, 7, 0, 0, 0, 255, 255]  // "hello", Z_SYNC_FLUSH
        #expect(try inflater.inflate(ByteBuffer(bytes: synced), into: &second, limit: 1024))
        #expect(String(buffer: second) == "hello")
        // A new stream after a final block in the same message (a sender flushing with BFINAL) is inflated too.
        var joined = ByteBuffer()
        let world: [UInt8] = [43, 207, 47, 202, 73, 1, 0]  // "world" with BFINAL
        #expect(
            try Inflater().inflate(ByteBuffer(bytes: final + world + [0, 0, 255, 255]), into: &joined, limit: 1024))
        #expect(String(buffer: joined) == "helloworld")
        // Garbage after a final block is refused (1007 on a socket), not looped on.
        #expect(throws: ZlibError.self) {
            var output = ByteBuffer()
            _ = try Inflater().inflate(ByteBuffer(bytes: final + [0xFF, 0xFF, 0xFF]), into: &output, limit: 1024)
        }
    }

    @Test("Compress then inflate round-trips; inflation stops at the limit (zip bomb)")
    func roundTripAndBomb() throws {
        let deflater = try Deflater(windowBits: 15, level: 6)
        let text = ByteBuffer(string: String(repeating: "all work and no play ", count: 200))
        let compressed = try deflater.compress(text, allocator: ByteBufferAllocator())
        #expect(compressed.readableBytes < text.readableBytes / 10)
        let inflater = try Inflater()
        var output = ByteBuffer()
        var input = compressed
        input.writeBytes([0x00, 0x00, 0xFF, 0xFF])
        #expect(try inflater.inflate(input, into: &output, limit: 1 << 20))
        #expect(output == text)

        let bomb = try deflater.compress(ByteBuffer(repeating: 0, count: 10 << 20), allocator: ByteBufferAllocator())
        #expect(bomb.readableBytes < 20_000)
        var capped = ByteBuffer()
        #expect(try !Inflater().inflate(bomb, into: &capped, limit: 64 * 1024))
        #expect(capped.readableBytes <= 64 * 1024)
    }
}
