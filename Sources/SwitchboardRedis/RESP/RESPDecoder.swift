public import NIOCore

/// Limits on what a Redis server (or something pretending to be one) can make the decoder hold.
public struct RESPLimits: Sendable, Hashable {
    /// The longest bulk string accepted (Redis's own default cap is 512 MiB; a client rarely needs that).
    public var maxBulkLength: Int
    /// The most elements of one array, set, push or map (pairs count twice).
    public var maxAggregateLength: Int
    /// The deepest nesting of aggregates.
    public var maxNesting: Int
    /// The longest line: simple strings, errors and numbers.
    public var maxLineLength: Int

    /// Creates limits; the defaults suit a pub/sub and command client.
    public init(
        maxBulkLength: Int = 64 * 1024 * 1024,
        maxAggregateLength: Int = 1024 * 1024,
        maxNesting: Int = 32,
        maxLineLength: Int = 64 * 1024
    ) {
        self.maxBulkLength = maxBulkLength
        self.maxAggregateLength = maxAggregateLength
        self.maxNesting = maxNesting
        self.maxLineLength = maxLineLength
    }
}

/// Why bytes from the server are not RESP, or not RESP this client accepts.
public struct RESPDecodingError: Error, Hashable, CustomStringConvertible {
    private enum Kind: Hashable {
        case unknownType(UInt8)
        case invalidLength(String)
        case invalidNumber(String)
        case missingCRLF
        case lineTooLong(Int)
        case bulkTooLong(Int)
        case aggregateTooLong(Int)
        case nestingTooDeep(Int)
        case invalidUTF8
    }

    private let kind: Kind

    static func unknownType(_ byte: UInt8) -> Self { .init(kind: .unknownType(byte)) }
    static func invalidLength(_ text: String) -> Self { .init(kind: .invalidLength(text)) }
    static func invalidNumber(_ text: String) -> Self { .init(kind: .invalidNumber(text)) }
    static let missingCRLF = Self(kind: .missingCRLF)
    static func lineTooLong(_ limit: Int) -> Self { .init(kind: .lineTooLong(limit)) }
    static func bulkTooLong(_ limit: Int) -> Self { .init(kind: .bulkTooLong(limit)) }
    static func aggregateTooLong(_ limit: Int) -> Self { .init(kind: .aggregateTooLong(limit)) }
    static func nestingTooDeep(_ limit: Int) -> Self { .init(kind: .nestingTooDeep(limit)) }
    static let invalidUTF8 = Self(kind: .invalidUTF8)

    public var description: String {
        switch self.kind {
        case .unknownType(let byte): "RESP: unknown type byte 0x\(String(byte, radix: 16))"
        case .invalidLength(let text): "RESP: invalid length \(text.debugDescription)"
        case .invalidNumber(let text): "RESP: invalid number \(text.debugDescription)"
        case .missingCRLF: "RESP: a bulk string does not end with CRLF"
        case .lineTooLong(let limit): "RESP: a line is longer than \(limit) bytes"
        case .bulkTooLong(let limit): "RESP: a bulk string is longer than \(limit) bytes"
        case .aggregateTooLong(let limit): "RESP: an aggregate has more than \(limit) elements"
        case .nestingTooDeep(let limit): "RESP: aggregates nested deeper than \(limit)"
        case .invalidUTF8: "RESP: a line is not UTF-8"
        }
    }
}

/// Decodes RESP2 and RESP3 values incrementally and within ``RESPLimits``.
///
/// It parses a whole value from the buffer's start and consumes nothing until the value is complete, so it can be
/// fed bytes split anywhere. A declared length over a limit fails at once, before the data arrives, and a line
/// without CRLF fails once it passes ``RESPLimits/maxLineLength``, so memory stays bounded whatever the peer sends.
public struct RESPDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = RESPValue

    public let limits: RESPLimits

    /// Creates a decoder.
    public init(limits: RESPLimits = .init()) {
        self.limits = limits
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> RESPValue? {
        var cursor = buffer
        guard let value = try self.parseValue(&cursor, depth: 0) else { return nil }
        buffer = cursor
        return value
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPValue? {
        try self.decode(buffer: &buffer)
    }

    // MARK: Parsing (nil = need more bytes)

    private func parseValue(_ buffer: inout ByteBuffer, depth: Int) throws -> RESPValue? {
        guard let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return nil }
        switch type {
        case UInt8(ascii: "+"):
            return try self.line(&buffer).map { .simpleString($0) }
        case UInt8(ascii: "-"):
            return try self.line(&buffer).map { .error($0) }
        case UInt8(ascii: ":"):
            guard let (value, next) = try self.number(buffer, at: buffer.readerIndex + 1) else { return nil }
            buffer.moveReaderIndex(to: next)
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = try self.length(&buffer, allowNull: true) else { return nil }
            if length < 0 { return .bulkString(nil) }
            return try self.bulk(&buffer, length: length).map { .bulkString($0) }
        case UInt8(ascii: "!"):
            guard let length = try self.length(&buffer, allowNull: false) else { return nil }
            return try self.bulk(&buffer, length: length).map { .error(String(buffer: $0)) }
        case UInt8(ascii: "="):
            guard let length = try self.length(&buffer, allowNull: false) else { return nil }
            guard var body = try self.bulk(&buffer, length: length) else { return nil }
            guard length >= 4, let format = body.readString(length: 3),
                body.readInteger(as: UInt8.self) == UInt8(ascii: ":")
            else { throw RESPDecodingError.invalidLength("verbatim string without a format") }
            return .verbatimString(format: format, text: body)
        case UInt8(ascii: "*"), UInt8(ascii: "~"), UInt8(ascii: ">"):
            guard let count = try self.length(&buffer, allowNull: type == UInt8(ascii: "*")) else { return nil }
            if count < 0 { return .array(nil) }
            guard let elements = try self.elements(&buffer, count: count, depth: depth) else { return nil }
            switch type {
            case UInt8(ascii: "*"): return .array(elements)
            case UInt8(ascii: "~"): return .set(elements)
            default: return .push(elements)
            }
        case UInt8(ascii: "%"):
            guard let count = try self.length(&buffer, allowNull: false) else { return nil }
            guard count <= self.limits.maxAggregateLength / 2 else {
                throw RESPDecodingError.aggregateTooLong(self.limits.maxAggregateLength)
            }
            guard let flat = try self.elements(&buffer, count: count * 2, depth: depth) else { return nil }
            return .map(stride(from: 0, to: flat.count, by: 2).map { RESPPair(key: flat[$0], value: flat[$0 + 1]) })
        case UInt8(ascii: "|"):
            // RESP3 attributes annotate the value that follows; this client reads the value and drops them.
            guard let count = try self.length(&buffer, allowNull: false) else { return nil }
            guard count <= self.limits.maxAggregateLength / 2 else {
                throw RESPDecodingError.aggregateTooLong(self.limits.maxAggregateLength)
            }
            guard try self.elements(&buffer, count: count * 2, depth: depth) != nil else { return nil }
            return try self.parseValue(&buffer, depth: depth)
        case UInt8(ascii: "_"):
            guard let text = try self.line(&buffer) else { return nil }
            guard text.isEmpty else { throw RESPDecodingError.invalidLength(text) }
            return .null
        case UInt8(ascii: "#"):
            guard let text = try self.line(&buffer) else { return nil }
            switch text {
            case "t": return .boolean(true)
            case "f": return .boolean(false)
            default: throw RESPDecodingError.invalidNumber(text)
            }
        case UInt8(ascii: ","):
            guard let text = try self.line(&buffer) else { return nil }
            switch text.lowercased() {
            case "inf": return .double(.infinity)
            case "-inf": return .double(-.infinity)
            case "nan": return .double(.nan)
            default:
                guard let value = Double(text) else { throw RESPDecodingError.invalidNumber(text) }
                return .double(value)
            }
        case UInt8(ascii: "("):
            guard let text = try self.line(&buffer) else { return nil }
            let digits = text.hasPrefix("-") ? text.dropFirst() : Substring(text)
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else {
                throw RESPDecodingError.invalidNumber(text)
            }
            return .bigNumber(text)
        default:
            throw RESPDecodingError.unknownType(type)
        }
    }

    private func elements(_ buffer: inout ByteBuffer, count: Int, depth: Int) throws -> [RESPValue]? {
        guard count <= self.limits.maxAggregateLength else {
            throw RESPDecodingError.aggregateTooLong(self.limits.maxAggregateLength)
        }
        guard depth < self.limits.maxNesting else { throw RESPDecodingError.nestingTooDeep(self.limits.maxNesting) }
        var elements: [RESPValue] = []
        elements.reserveCapacity(min(count, 1024))
        for _ in 0..<count {
            guard let element = try self.parseValue(&buffer, depth: depth + 1) else { return nil }
            elements.append(element)
        }
        return elements
    }

    /// The text after the type byte up to CRLF, consuming both; `nil` if the CRLF has not arrived.
    private func line(_ buffer: inout ByteBuffer) throws -> String? {
        let start = buffer.readerIndex + 1
        let view = buffer.readableBytesView.dropFirst()
        guard let cr = view.firstIndex(of: UInt8(ascii: "\r")) else {
            if view.count > self.limits.maxLineLength { throw RESPDecodingError.lineTooLong(self.limits.maxLineLength) }
            return nil
        }
        let length = cr - start
        if length > self.limits.maxLineLength { throw RESPDecodingError.lineTooLong(self.limits.maxLineLength) }
        guard let lf = buffer.getInteger(at: cr + 1, as: UInt8.self) else { return nil }
        guard lf == UInt8(ascii: "\n") else { throw RESPDecodingError.missingCRLF }
        guard let bytes = buffer.getBytes(at: start, length: length),
            let text = String(validating: bytes, as: UTF8.self)
        else { throw RESPDecodingError.invalidUTF8 }
        buffer.moveReaderIndex(to: cr + 2)
        return text
    }

    /// A length line; -1 only where RESP2 allows a null.
    private func length(_ buffer: inout ByteBuffer, allowNull: Bool) throws -> Int? {
        let number: (Int64, Int)?
        do {
            number = try self.number(buffer, at: buffer.readerIndex + 1)
        } catch let error as RESPDecodingError where error != .lineTooLong(self.limits.maxLineLength) {
            throw RESPDecodingError.invalidLength(error.description)
        }
        guard let (value, next) = number else { return nil }
        guard value >= (allowNull ? -1 : 0) else {
            throw RESPDecodingError.invalidLength(String(value))
        }
        buffer.moveReaderIndex(to: next)
        return Int(value)
    }

    /// A decimal integer from `index` up to CRLF: its value and the index after the CRLF; `nil` if the CRLF has not
    /// come. Within the line limit, no overflow, digits only (a leading `-` allowed).
    func number(_ buffer: ByteBuffer, at index: Int) throws -> (Int64, Int)? {
        let limit = self.limits.maxLineLength
        return try buffer.withUnsafeReadableBytes { bytes -> (Int64, Int)? in
            let base = buffer.readerIndex
            var position = index - base
            var negative = false
            if position < bytes.count, bytes[position] == UInt8(ascii: "-") {
                negative = true
                position += 1
            }
            let digitsStart = position
            var value: Int64 = 0
            while position < bytes.count {
                let byte = bytes[position]
                if byte == UInt8(ascii: "\r") {
                    guard position + 1 < bytes.count else { return nil }
                    guard bytes[position + 1] == UInt8(ascii: "\n"), position > digitsStart else {
                        throw RESPDecodingError.invalidNumber(Self.text(bytes, from: index - base, to: position))
                    }
                    return (negative ? -value : value, base + position + 2)
                }
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), position - (index - base) < limit else {
                    if position - (index - base) >= limit { throw RESPDecodingError.lineTooLong(limit) }
                    throw RESPDecodingError.invalidNumber(Self.text(bytes, from: index - base, to: position + 1))
                }
                let (times, overflow1) = value.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
                guard !overflow1, !overflow2 else {
                    throw RESPDecodingError.invalidNumber(Self.text(bytes, from: index - base, to: position + 1))
                }
                value = sum
                position += 1
            }
            if position - (index - base) > limit { throw RESPDecodingError.lineTooLong(limit) }
            return nil
        }
    }

    private static func text(_ bytes: UnsafeRawBufferPointer, from start: Int, to end: Int) -> String {
        String(decoding: bytes[max(0, start)..<min(end, bytes.count)].prefix(40), as: UTF8.self)
    }

    private func bulk(_ buffer: inout ByteBuffer, length: Int) throws -> ByteBuffer? {
        guard length <= self.limits.maxBulkLength else {
            throw RESPDecodingError.bulkTooLong(self.limits.maxBulkLength)
        }
        guard buffer.readableBytes >= length + 2 else { return nil }
        let body = buffer.readSlice(length: length)!
        guard buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\r"),
            buffer.readInteger(as: UInt8.self) == UInt8(ascii: "\n")
        else { throw RESPDecodingError.missingCRLF }
        return body
    }
}
