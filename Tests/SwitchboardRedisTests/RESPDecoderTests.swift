import NIOCore
import NIOTestUtils
import SwitchboardRedis
import Testing

private func decodeAll(_ chunks: [ByteBuffer], limits: RESPLimits = .init()) throws -> [RESPValue] {
    var decoder = RESPDecoder(limits: limits)
    var pending = ByteBuffer()
    var values: [RESPValue] = []
    for var chunk in chunks {
        pending.writeBuffer(&chunk)
        while let value = try decoder.decode(buffer: &pending) { values.append(value) }
    }
    #expect(pending.readableBytes == 0, "bytes left over")
    return values
}

private let wire =
    "+OK\r\n-ERR unknown command\r\n:-42\r\n$5\r\nhello\r\n$0\r\n\r\n$-1\r\n*-1\r\n"
    + "*3\r\n$7\r\nmessage\r\n$4\r\nchat\r\n$8\r\nhi there\r\n"
    + ">3\r\n$7\r\nmessage\r\n$4\r\nchat\r\n$2\r\nyo\r\n"
    + "_\r\n#t\r\n#f\r\n,3.5\r\n,inf\r\n(12345678901234567890\r\n!9\r\nERR oops!\r\n=8\r\ntxt:abcd\r\n"
    + "%1\r\n+key\r\n:1\r\n~2\r\n:1\r\n:2\r\n|1\r\n+ttl\r\n:3\r\n+annotated\r\n*1\r\n*1\r\n:7\r\n"

private let expected: [RESPValue] = [
    .simpleString("OK"), .error("ERR unknown command"), .integer(-42), .bulkString(ByteBuffer(string: "hello")),
    .bulkString(ByteBuffer()), .bulkString(nil), .array(nil),
    .array([
        .bulkString(ByteBuffer(string: "message")), .bulkString(ByteBuffer(string: "chat")),
        .bulkString(ByteBuffer(string: "hi there")),
    ]),
    .push([
        .bulkString(ByteBuffer(string: "message")), .bulkString(ByteBuffer(string: "chat")),
        .bulkString(ByteBuffer(string: "yo")),
    ]),
    .null, .boolean(true), .boolean(false), .double(3.5), .double(.infinity), .bigNumber("12345678901234567890"),
    .error("ERR oops!"), .verbatimString(format: "txt", text: ByteBuffer(string: "abcd")),
    .map([RESPPair(key: .simpleString("key"), value: .integer(1))]), .set([.integer(1), .integer(2)]),
    .simpleString("annotated"), .array([.array([.integer(7)])]),
]

@Suite("RESP decoder")
struct RESPDecoderTests {
    @Test("RESP2 and RESP3 values decode the same at every split point and byte by byte")
    func everySplitPoint() throws {
        let all = ByteBuffer(string: wire)
        #expect(try decodeAll([all]) == expected)
        for split in 0...all.readableBytes {
            let chunks = [
                all.getSlice(at: 0, length: split)!, all.getSlice(at: split, length: all.readableBytes - split)!,
            ]
            #expect(try decodeAll(chunks) == expected, "split at \(split)")
        }
        #expect(try decodeAll((0..<all.readableBytes).map { all.getSlice(at: $0, length: 1)! }) == expected)
    }

    @Test("NIO's ByteToMessageDecoderVerifier: any chunking, no leftovers")
    func verifier() throws {
        let pairs: [(ByteBuffer, [RESPValue])] = [
            (
                ByteBuffer(string: "*2\r\n$9\r\nsubscribe\r\n:1\r\n"),
                [.array([.bulkString(ByteBuffer(string: "subscribe")), .integer(1)])]
            ),
            (ByteBuffer(string: "+PONG\r\n:0\r\n"), [.simpleString("PONG"), .integer(0)]),
        ]
        try ByteToMessageDecoderVerifier.verifyDecoder(inputOutputPairs: pairs) { RESPDecoder() }
    }

    enum Malformed: String, CaseIterable, CustomTestStringConvertible {
        case unknownType, badInteger, badLength, negativeLength, bulkWithoutCRLF, badBoolean, badDouble, badBigNumber
        case nullWithPayload, verbatimWithoutFormat, invalidUTF8Line, bareCR
        var testDescription: String { self.rawValue }
        var bytes: [UInt8] {
            switch self {
            case .unknownType: Array("?oops\r\n".utf8)
            case .badInteger: Array(":12a\r\n".utf8)
            case .badLength: Array("$x\r\n".utf8)
            case .negativeLength: Array("$-2\r\n".utf8)
            case .bulkWithoutCRLF: Array("$3\r\nabcXY".utf8)
            case .badBoolean: Array("#x\r\n".utf8)
            case .badDouble: Array(",1.2.3\r\n".utf8)
            case .badBigNumber: Array("(12a\r\n".utf8)
            case .nullWithPayload: Array("_x\r\n".utf8)
            case .verbatimWithoutFormat: Array("=3\r\nabc\r\n".utf8)
            case .invalidUTF8Line: [UInt8(ascii: "+"), 0xFF, 0xFE, 13, 10]
            case .bareCR: Array("+OK\rX".utf8)
            }
        }
    }

    @Test("Malformed input is a clear error, never a crash", arguments: Malformed.allCases)
    func malformed(input: Malformed) {
        #expect(throws: RESPDecodingError.self) { _ = try decodeAll([ByteBuffer(bytes: input.bytes)]) }
    }

    @Test("Limits fail before the data arrives: bulk length, aggregate size, nesting, endless lines")
    func limits() throws {
        let limits = RESPLimits(maxBulkLength: 1024, maxAggregateLength: 100, maxNesting: 4, maxLineLength: 64)
        var decoder = RESPDecoder(limits: limits)
        var declaredHuge = ByteBuffer(string: "$1000000000\r\n")
        #expect(throws: RESPDecodingError.self) { _ = try decoder.decode(buffer: &declaredHuge) }
        var manyElements = ByteBuffer(string: "*101\r\n")
        #expect(throws: RESPDecodingError.self) { _ = try decoder.decode(buffer: &manyElements) }
        var bigMap = ByteBuffer(string: "%51\r\n")
        #expect(throws: RESPDecodingError.self) { _ = try decoder.decode(buffer: &bigMap) }
        var deep = ByteBuffer(string: String(repeating: "*1\r\n", count: 5) + ":1\r\n")
        #expect(throws: RESPDecodingError.self) { _ = try decoder.decode(buffer: &deep) }
        var endless = ByteBuffer(string: "+" + String(repeating: "a", count: 100))
        #expect(throws: RESPDecodingError.self) { _ = try decoder.decode(buffer: &endless) }
        var fine = ByteBuffer(string: String(repeating: "*1\r\n", count: 4) + ":1\r\n")
        #expect(try decoder.decode(buffer: &fine) != nil)
    }

    @Test("Commands encode as arrays of bulk strings")
    func commandEncoding() {
        var buffer = ByteBuffer()
        RESPCommand("PUBLISH", "chat", "héllo").encode(into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$7\r\nPUBLISH\r\n$4\r\nchat\r\n$6\r\nhéllo\r\n")
    }
}
