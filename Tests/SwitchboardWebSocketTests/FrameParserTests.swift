import NIOCore
import SwitchboardTesting
import Testing

@testable import SwitchboardWebSocket

/// Collects what the parser produces from `chunks`: data frames assembled, control frames as they are.
private func parse(_ chunks: [ByteBuffer], maxFrameSize: Int = 1 << 20) throws -> [String] {
    var parser = FrameParser(maxFrameSize: maxFrameSize, allowsRSV1: false)
    var pending = ByteBuffer()
    var out: [String] = []
    var current = ""
    for var chunk in chunks {
        pending.writeBuffer(&chunk)
        while let event = try parser.next(from: &pending) {
            switch event {
            case .control(let header, let payload):
                let hex = payload.readableBytesView.map { String($0, radix: 16) }.joined(separator: " ")
                out.append("control \(header.opcode) \(hex)")
            case .dataHeader(let header):
                current = "data \(header.opcode) fin=\(header.fin) "
            case .data(let piece, let end):
                current += String(buffer: piece)
                if end { out.append(current) }
            }
        }
    }
    return out
}

@Suite("Frame parser")
struct FrameParserTests {
    static let stream: ByteBuffer = {
        var all = ByteBuffer()
        var parts = [
            clientFrame(0x1, text: "Hel", fin: false),
            clientFrame(0x9, text: "ping!"),
            clientFrame(0x0, text: "lo", fin: true),
            clientFrame(0x2, Array(repeating: UInt8(ascii: "b"), count: 300)),
            clientFrame(0x1, text: ""),
            clientFrame(0x8, closePayload(1000)),
        ]
        for index in parts.indices { all.writeBuffer(&parts[index]) }
        return all
    }()

    static let expected = [
        "data text fin=false Hel",
        "control ping 70 69 6e 67 21",
        "data continuation fin=true lo",
        "data binary fin=true " + String(repeating: "b", count: 300),
        "data text fin=true ",
        "control close 3 e8",
    ]

    @Test("The same frames whatever the split point of the input")
    func everySplitPoint() throws {
        let all = Self.stream
        #expect(try parse([all]) == Self.expected)
        for split in 0...all.readableBytes {
            let head = all.getSlice(at: 0, length: split)!
            let tail = all.getSlice(at: split, length: all.readableBytes - split)!
            #expect(try parse([head, tail]) == Self.expected, "split at \(split)")
        }
        let bytes = (0..<all.readableBytes).map { all.getSlice(at: $0, length: 1)! }
        #expect(try parse(bytes) == Self.expected, "one byte at a time")
    }

    @Test(
        "Header violations are caught before the payload arrives",
        arguments: [
            ("unmasked", clientFrame(0x1, Array("x".utf8), masked: false), WebSocketCloseCode.protocolError),
            ("RSV1 without deflate", clientFrame(0x1, Array("x".utf8), rsv1: true), .protocolError),
            (
                "RSV2",
                {
                    var b = clientFrame(0x1, Array("x".utf8)); b.setInteger(UInt8(0xA1), at: 0); return b
                }(), .protocolError
            ),
            ("reserved data opcode", clientFrame(0x3, []), .protocolError),
            ("reserved control opcode", clientFrame(0xB, []), .protocolError),
            ("fragmented ping", clientFrame(0x9, [], fin: false), .protocolError),
            ("long ping", clientFrame(0x9, Array(repeating: 0, count: 126)), .protocolError),
            ("frame too big", clientFrame(0x2, Array(repeating: 0, count: 2000)), .messageTooBig),
        ] as [(String, ByteBuffer, WebSocketCloseCode)]
    )
    func violations(name: String, frame: ByteBuffer, code: WebSocketCloseCode) throws {
        var parser = FrameParser(maxFrameSize: 1024, allowsRSV1: false)
        // Only the header: the violation must not wait for the payload.
        var header = frame.getSlice(at: 0, length: min(frame.readableBytes, 8))!
        #expect(throws: WebSocketProtocolViolation.self) { _ = try parser.next(from: &header) }
        var whole = frame
        var fresh = FrameParser(maxFrameSize: 1024, allowsRSV1: false)
        do {
            _ = try fresh.next(from: &whole)
            Issue.record("\(name) was accepted")
        } catch {
            #expect(error.code == code, "\(name)")
        }
    }

    @Test("A 64-bit length with the top bit set is a protocol error")
    func hugeLength() throws {
        var buffer = ByteBuffer(bytes: [0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4])
        var parser = FrameParser(maxFrameSize: .max, allowsRSV1: false)
        #expect(throws: WebSocketProtocolViolation(code: .protocolError, reason: "64-bit length with MSB set")) {
            _ = try parser.next(from: &buffer)
        }
    }

    @Test("Unmasking is correct at every offset and length")
    func masking() {
        let key: UInt32 = 0xA1B2_C3D4
        let keyBytes: [UInt8] = [0xA1, 0xB2, 0xC3, 0xD4]
        for offset in 0..<4 {
            for length in [0, 1, 3, 7, 8, 9, 16, 31] {
                let plain = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }
                var buffer = ByteBuffer(bytes: plain)
                buffer.unmask(with: key, offset: offset)
                let expected = plain.enumerated().map { $0.element ^ keyBytes[($0.offset + offset) % 4] }
                #expect(Array(buffer.readableBytesView) == expected, "offset \(offset) length \(length)")
            }
        }
    }
}
