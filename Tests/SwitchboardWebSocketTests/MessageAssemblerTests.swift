import NIOCore
import Testing

@testable import SwitchboardWebSocket

/// Feeds `payload` as a message of frames split at `frameSplits` (payload offsets where a new frame starts), each
/// frame's payload delivered in pieces split at `pieceSplits` (offsets within the whole payload); returns the message
/// or the violation.
private func assemble(
    _ payload: [UInt8], kind: WebSocketOpcode = .text, compressed: Bool = false, frameSplits: [Int] = [],
    pieceSplits: [Int] = [], maxMessageSize: Int = 1 << 20, deflate: NegotiatedDeflate? = nil
) -> Result<WebSocketMessage?, WebSocketProtocolViolation> {
    var assembler = MessageAssembler(maxMessageSize: maxMessageSize, deflate: deflate)
    let frameBounds = [0] + frameSplits.filter { $0 > 0 && $0 < payload.count } + [payload.count]
    var result: WebSocketMessage?
    do throws(WebSocketProtocolViolation) {
        for (index, (start, end)) in zip(frameBounds, frameBounds.dropFirst()).enumerated() {
            let last = index == frameBounds.count - 2
            try assembler.startFrame(
                FrameHeader(
                    fin: last, rsv1: compressed && index == 0, opcode: index == 0 ? kind : .continuation,
                    length: end - start, maskKey: nil))
            let pieceBounds = [start] + pieceSplits.filter { $0 > start && $0 < end } + [end]
            for (pieceStart, pieceEnd) in zip(pieceBounds, pieceBounds.dropFirst()) {
                let message = try assembler.receive(
                    ByteBuffer(bytes: payload[pieceStart..<pieceEnd]), endOfFrame: pieceEnd == end)
                if let message {
                    #expect(last && pieceEnd == end, "a message before its last piece")
                    result = message
                }
            }
        }
        return .success(result)
    } catch {
        return .failure(error)
    }
}

private let noContextTakeover = NegotiatedDeflate(
    serverNoContextTakeover: true, clientNoContextTakeover: true, serverWindowBits: 15, minimumSizeToCompress: 0,
    compressionLevel: 6, responseHeader: "permessage-deflate")

/// A message compressed as a client sends it: raw deflate, sync-flushed, the trailing 00 00 FF FF removed.
private func compressed(_ payload: [UInt8]) throws -> [UInt8] {
    let deflater = try Deflater(windowBits: 15, level: 6)
    let output = try deflater.compress(ByteBuffer(bytes: payload), allocator: ByteBufferAllocator())
    return Array(output.readableBytesView)
}

@Suite("MessageAssembler: the same message whatever the frames and reads")
struct MessageAssemblerTests {
    /// Text with 1- to 4-byte code points, so splits fall inside them.
    private let text = Array("héllo, wörld — ✓ 𝄞 done".utf8)

    @Test("Text at every split point: one frame in two reads, and two frames, give the message")
    func everySplitPoint() {
        for split in 0...self.text.count {
            for (frames, pieces) in [([Int](), [split]), ([split], []), ([split], [split / 2, split + 1])] {
                let result = assemble(self.text, frameSplits: frames, pieceSplits: pieces)
                #expect(
                    result == .success(WebSocketMessage(kind: .text, data: ByteBuffer(bytes: self.text))),
                    "frames at \(frames), reads at \(pieces)")
            }
        }
    }

    @Test("Compressed at every split point of the compressed bytes: the inflated message")
    func compressedEverySplitPoint() throws {
        let payload = Array(String(repeating: "switchboard ✓ ", count: 20).utf8)
        let wire = try compressed(payload)
        for split in 0...wire.count {
            for (frames, pieces) in [([Int](), [split]), ([split], [])] {
                let result = assemble(
                    wire, compressed: true, frameSplits: frames, pieceSplits: pieces, deflate: noContextTakeover)
                #expect(
                    result == .success(WebSocketMessage(kind: .text, data: ByteBuffer(bytes: payload))),
                    "frames at \(frames), reads at \(pieces)")
            }
        }
    }

    @Test("Invalid UTF-8 fails at every split point, also when the message ends inside a code point")
    func invalidUTF8() {
        var bad = self.text
        bad[7] = 0xFF
        for split in 0...bad.count {
            #expect(
                assemble(bad, frameSplits: [split]).failure?.code == .invalidFramePayloadData, "split at \(split)")
        }
        let cut = Array(self.text.prefix(2))  // "h" and the first byte of "é"
        #expect(assemble(cut).failure?.reason == "text message ends inside a code point")
        #expect(
            assemble([0xFF], kind: .binary)
                == .success(WebSocketMessage(kind: .binary, data: ByteBuffer(bytes: [0xFF]))))
    }

    @Test("Fragment rules and the size cap: each a protocol violation with its close code")
    func violations() throws {
        var assembler = MessageAssembler(maxMessageSize: 10, deflate: nil)
        #expect(throws: WebSocketProtocolViolation.self) {
            try assembler.startFrame(FrameHeader(fin: true, rsv1: false, opcode: .continuation, length: 1))
        }
        try assembler.startFrame(FrameHeader(fin: false, rsv1: false, opcode: .binary, length: 6))
        _ = try assembler.receive(ByteBuffer(bytes: [1, 2, 3, 4, 5, 6]), endOfFrame: true)
        #expect(throws: WebSocketProtocolViolation.self) {
            try assembler.startFrame(FrameHeader(fin: true, rsv1: false, opcode: .text, length: 1))
        }
        #expect(throws: WebSocketProtocolViolation.self) {
            try assembler.startFrame(FrameHeader(fin: true, rsv1: true, opcode: .continuation, length: 1))
        }
        let tooBig = assemble(Array(repeating: 0x61, count: 11), frameSplits: [5], maxMessageSize: 10)
        #expect(tooBig.failure?.code == .messageTooBig)
        // Inflated past the cap: a small compressed message of many repeated bytes.
        let bomb = try compressed(Array(repeating: 0x61, count: 10_000))
        let inflated = assemble(bomb, compressed: true, maxMessageSize: 1_000, deflate: noContextTakeover)
        #expect(inflated.failure?.code == .messageTooBig)
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let failure) = self { return failure }
        return nil
    }
}
