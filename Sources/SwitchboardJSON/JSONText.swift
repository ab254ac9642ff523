/// One JSON text (RFC 8259), checked whole when made, then walked where the caller needs it: the members of an
/// object, the elements of an array, a string's value, or any value's bytes exactly as they were sent.
///
/// The publish API's path uses it instead of `JSONDecoder`: a message's `data` goes out as the bytes it came in as,
/// so it is never decoded into values and written again (which was most of a publish's cost).
///
/// Strict, as the RFC's grammar is: no comments, trailing commas, leading zeros, `NaN`, single quotes or control
/// characters in strings; strings must be well-formed UTF-8 and their `\u` escapes must not leave a surrogate
/// unpaired; nesting is limited to ``maxDepth``.
public struct JSONText: Sendable {
    /// What a value is.
    public enum Kind: Equatable, Sendable {
        case object, array, string, number, bool, null
    }

    /// Why a text is not JSON, with the byte offset where it stopped being JSON.
    public struct SyntaxError: Error, Equatable, CustomStringConvertible {
        /// Where the text stopped being JSON, in bytes from its start.
        public var offset: Int
        /// What was wrong there.
        public var reason: String

        public var description: String { "\(self.reason) at byte \(self.offset)" }
    }

    /// Objects and arrays nest at most this deep.
    public static let maxDepth = 64

    /// The text.
    public let bytes: [UInt8]
    /// Where the top-level value is in ``bytes``.
    public let root: Range<Int>

    /// Checks `bytes` as one JSON text.
    ///
    /// - Throws: ``SyntaxError`` naming the first place it is not.
    public init(_ bytes: [UInt8]) throws(SyntaxError) {
        self.bytes = bytes
        var reader = Reader(bytes: bytes)
        reader.skipSpace()
        let start = reader.position
        try reader.value(depth: 0)
        let end = reader.position
        reader.skipSpace()
        guard reader.position == bytes.count else { throw reader.error("text after the JSON value") }
        self.root = start..<end
    }

    /// The kind of the (checked) value at `value`.
    public func kind(of value: Range<Int>) -> Kind {
        switch self.bytes[value.lowerBound] {
        case UInt8(ascii: "{"): .object
        case UInt8(ascii: "["): .array
        case UInt8(ascii: "\""): .string
        case UInt8(ascii: "t"), UInt8(ascii: "f"): .bool
        case UInt8(ascii: "n"): .null
        default: .number
        }
    }

    /// The members of the object at `value`, in the order written, keys decoded.
    public func members(of value: Range<Int>) -> [(key: String, value: Range<Int>)] {
        precondition(self.kind(of: value) == .object)
        var members: [(key: String, value: Range<Int>)] = []
        self.forEachEntry(of: value, close: UInt8(ascii: "}")) { reader in
            let keyStart = reader.position
            reader.skipChecked()
            let key = self.string(at: keyStart..<reader.position)
            reader.skipSpace()
            reader.position += 1  // the colon
            reader.skipSpace()
            let valueStart = reader.position
            reader.skipChecked()
            members.append((key, valueStart..<reader.position))
        }
        return members
    }

    /// The elements of the array at `value`, in order.
    public func elements(of value: Range<Int>) -> [Range<Int>] {
        precondition(self.kind(of: value) == .array)
        var elements: [Range<Int>] = []
        self.forEachEntry(of: value, close: UInt8(ascii: "]")) { reader in
            let start = reader.position
            reader.skipChecked()
            elements.append(start..<reader.position)
        }
        return elements
    }

    /// Calls `entry` with a reader at each entry (member or element) of the checked container at `value`; `entry`
    /// steps over it.
    private func forEachEntry(of value: Range<Int>, close: UInt8, _ entry: (inout Reader) -> Void) {
        var reader = Reader(bytes: self.bytes, position: value.lowerBound + 1)
        reader.skipSpace()
        while reader.peek != close {
            entry(&reader)
            reader.skipSpace()
            if reader.peek == UInt8(ascii: ",") {
                reader.position += 1
                reader.skipSpace()
            }
        }
    }

    /// The value of the (checked) string at `value`, escapes decoded.
    public func string(at value: Range<Int>) -> String {
        precondition(self.kind(of: value) == .string)
        let content = value.lowerBound + 1..<value.upperBound - 1
        guard self.bytes[content].contains(UInt8(ascii: "\\")) else {
            return String(decoding: self.bytes[content], as: UTF8.self)
        }
        var scalars = String.UnicodeScalarView()
        var utf8: [UInt8] = []
        var index = content.lowerBound
        // Runs of plain bytes are collected and decoded together; an escape ends a run.
        func flush() {
            guard !utf8.isEmpty else { return }
            scalars.append(contentsOf: String(decoding: utf8, as: UTF8.self).unicodeScalars)
            utf8.removeAll(keepingCapacity: true)
        }
        while index < content.upperBound {
            let byte = self.bytes[index]
            guard byte == UInt8(ascii: "\\") else {
                utf8.append(byte)
                index += 1
                continue
            }
            flush()
            let escape = self.bytes[index + 1]
            index += 2
            switch escape {
            case UInt8(ascii: "b"): scalars.append("\u{08}")
            case UInt8(ascii: "f"): scalars.append("\u{0C}")
            case UInt8(ascii: "n"): scalars.append("\n")
            case UInt8(ascii: "r"): scalars.append("\r")
            case UInt8(ascii: "t"): scalars.append("\t")
            case UInt8(ascii: "u"):
                var code = Self.hex4(self.bytes, at: index)
                index += 4
                if (0xD800...0xDBFF).contains(code) {
                    // Checked: a low surrogate's escape follows.
                    let low = Self.hex4(self.bytes, at: index + 2)
                    index += 6
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                }
                scalars.append(Unicode.Scalar(code)!)
            default: scalars.append(Unicode.Scalar(escape))  // " \ /
            }
        }
        flush()
        return String(scalars)
    }

    /// The four hex digits at `index` (checked) as a number.
    fileprivate static func hex4(_ bytes: [UInt8], at index: Int) -> UInt32 {
        var value: UInt32 = 0
        for byte in bytes[index..<index + 4] { value = value << 4 | UInt32(Self.hexValue(byte)!) }
        return value
    }

    fileprivate static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// A position in a text, and the grammar: ``value(depth:)`` checks, ``skipChecked()`` steps over what was checked.
private struct Reader {
    let bytes: [UInt8]
    var position = 0

    var peek: UInt8? { self.position < self.bytes.count ? self.bytes[self.position] : nil }

    func error(_ reason: String) -> JSONText.SyntaxError {
        JSONText.SyntaxError(offset: self.position, reason: reason)
    }

    mutating func skipSpace() {
        while let byte = self.peek,
            byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
                || byte == UInt8(ascii: "\t")
        {
            self.position += 1
        }
    }

    // MARK: Checking

    mutating func value(depth: Int) throws(JSONText.SyntaxError) {
        guard let byte = self.peek else { throw self.error("a value was expected") }
        switch byte {
        case UInt8(ascii: "{"): try self.object(depth: depth + 1)
        case UInt8(ascii: "["): try self.array(depth: depth + 1)
        case UInt8(ascii: "\""): try self.string()
        case UInt8(ascii: "t"): try self.literal("true")
        case UInt8(ascii: "f"): try self.literal("false")
        case UInt8(ascii: "n"): try self.literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try self.number()
        default: throw self.error("a value was expected")
        }
    }

    private mutating func object(depth: Int) throws(JSONText.SyntaxError) {
        try self.container(depth: depth, close: UInt8(ascii: "}")) { reader throws(JSONText.SyntaxError) in
            guard reader.peek == UInt8(ascii: "\"") else { throw reader.error("a member's name was expected") }
            try reader.string()
            reader.skipSpace()
            guard reader.peek == UInt8(ascii: ":") else { throw reader.error("':' was expected") }
            reader.position += 1
            reader.skipSpace()
            try reader.value(depth: depth)
        }
    }

    private mutating func array(depth: Int) throws(JSONText.SyntaxError) {
        try self.container(depth: depth, close: UInt8(ascii: "]")) { reader throws(JSONText.SyntaxError) in
            try reader.value(depth: depth)
        }
    }

    /// An object or array: its opening byte, then entries read by `entry` separated by commas, up to `close`.
    private mutating func container(
        depth: Int, close: UInt8, _ entry: (inout Reader) throws(JSONText.SyntaxError) -> Void
    ) throws(JSONText.SyntaxError) {
        guard depth <= JSONText.maxDepth else { throw self.error("nested deeper than \(JSONText.maxDepth)") }
        self.position += 1
        self.skipSpace()
        if self.peek == close {
            self.position += 1
            return
        }
        while true {
            try entry(&self)
            self.skipSpace()
            switch self.peek {
            case UInt8(ascii: ","):
                self.position += 1
                self.skipSpace()
            case close:
                self.position += 1
                return
            default: throw self.error("',' or '\(Character(Unicode.Scalar(close)))' was expected")
            }
        }
    }

    private mutating func literal(_ word: String) throws(JSONText.SyntaxError) {
        let count = word.utf8.count
        guard self.position + count <= self.bytes.count,
            self.bytes[self.position..<self.position + count].elementsEqual(word.utf8)
        else { throw self.error("a value was expected") }
        self.position += count
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    private mutating func number() throws(JSONText.SyntaxError) {
        if self.peek == UInt8(ascii: "-") { self.position += 1 }
        switch self.peek ?? 0 {
        case UInt8(ascii: "0"): self.position += 1
        case UInt8(ascii: "1")...UInt8(ascii: "9"): self.digits()
        default: throw self.error("a digit was expected")
        }
        if self.peek == UInt8(ascii: ".") {
            self.position += 1
            guard self.digits() else { throw self.error("a digit was expected after '.'") }
        }
        if self.peek == UInt8(ascii: "e") || self.peek == UInt8(ascii: "E") {
            self.position += 1
            if self.peek == UInt8(ascii: "+") || self.peek == UInt8(ascii: "-") { self.position += 1 }
            guard self.digits() else { throw self.error("a digit was expected in the exponent") }
        }
    }

    /// Steps over digits; whether there was one.
    @discardableResult
    private mutating func digits() -> Bool {
        let start = self.position
        while let byte = self.peek, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) { self.position += 1 }
        return self.position > start
    }

    mutating func string() throws(JSONText.SyntaxError) {
        self.position += 1
        while true {
            guard let byte = self.peek else { throw self.error("a string is not closed") }
            switch byte {
            case UInt8(ascii: "\""):
                self.position += 1
                return
            case UInt8(ascii: "\\"):
                try self.escape()
            case 0..<0x20:
                throw self.error("a control character in a string")
            case 0..<0x80:
                self.position += 1
            default:
                try self.scalar()
            }
        }
    }

    private mutating func escape() throws(JSONText.SyntaxError) {
        self.position += 1
        guard let byte = self.peek else { throw self.error("a string is not closed") }
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"), UInt8(ascii: "f"),
            UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            self.position += 1
        case UInt8(ascii: "u"):
            self.position += 1
            let code = try self.hex4()
            if (0xDC00...0xDFFF).contains(code) { throw self.error("an unpaired surrogate escape") }
            if (0xD800...0xDBFF).contains(code) {
                guard self.peek == UInt8(ascii: "\\"), self.position + 1 < self.bytes.count,
                    self.bytes[self.position + 1] == UInt8(ascii: "u")
                else { throw self.error("an unpaired surrogate escape") }
                self.position += 2
                guard (0xDC00...0xDFFF).contains(try self.hex4()) else {
                    throw self.error("an unpaired surrogate escape")
                }
            }
        default:
            throw self.error("an unknown escape")
        }
    }

    private mutating func hex4() throws(JSONText.SyntaxError) -> UInt32 {
        guard self.position + 4 <= self.bytes.count,
            self.bytes[self.position..<self.position + 4].allSatisfy({ JSONText.hexValue($0) != nil })
        else { throw self.error("four hex digits were expected") }
        defer { self.position += 4 }
        return JSONText.hex4(self.bytes, at: self.position)
    }

    /// One well-formed UTF-8 sequence of two to four bytes (Unicode, table 3-7): no overlong forms, no surrogates,
    /// nothing past U+10FFFF.
    private mutating func scalar() throws(JSONText.SyntaxError) {
        let lead = self.bytes[self.position]
        let count: Int
        var second: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: count = 2
        case 0xE0:
            count = 3
            second = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: count = 3
        case 0xED:
            count = 3
            second = 0x80...0x9F
        case 0xF0:
            count = 4
            second = 0x90...0xBF
        case 0xF1...0xF3: count = 4
        case 0xF4:
            count = 4
            second = 0x80...0x8F
        default: throw self.error("invalid UTF-8")
        }
        guard self.position + count <= self.bytes.count, second.contains(self.bytes[self.position + 1]) else {
            throw self.error("invalid UTF-8")
        }
        for index in self.position + 2..<self.position + count where !(0x80...0xBF).contains(self.bytes[index]) {
            throw self.error("invalid UTF-8")
        }
        self.position += count
    }

    // MARK: Stepping over checked values

    /// Steps over the value at the position, which ``value(depth:)`` has checked.
    mutating func skipChecked() {
        switch self.bytes[self.position] {
        case UInt8(ascii: "\""):
            self.position += 1
            while self.bytes[self.position] != UInt8(ascii: "\"") {
                self.position += self.bytes[self.position] == UInt8(ascii: "\\") ? 2 : 1
            }
            self.position += 1
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            // Brackets inside strings are skipped with the strings.
            var depth = 0
            repeat {
                switch self.bytes[self.position] {
                case UInt8(ascii: "\""):
                    self.skipChecked()
                    continue
                case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
                default: break
                }
                self.position += 1
            } while depth > 0
        default:
            // A number or a literal: up to the next delimiter.
            while let byte = self.peek,
                !(byte == UInt8(ascii: ",") || byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]")
                    || byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r")
                    || byte == UInt8(ascii: "\t"))
            {
                self.position += 1
            }
        }
    }
}
