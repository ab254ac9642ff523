public import NIOCore

/// One call of a script, encoded once by its caller: `EVALSHA sha numkeys key… argument…` in a single buffer, which
/// the connection copies into its next write as it is. No command value, no array of arguments and no future per
/// call: the path a busy room's messages take (``RedisRouter/evaluateNow(_:completion:)``).
///
/// Redis answers `NOSCRIPT` when its script cache was flushed under the connection; the connection then sends the
/// same call again as `EVAL` with the source (the bytes after the SHA-1 are the same) and loads the script again
/// before its next use.
///
/// ```swift
/// var call = RedisScriptCall(bump, keys: ["counter"], argumentCount: 1)
/// call.append(2)
/// router.evaluateNow(call, completion: promise)
/// ```
public struct RedisScriptCall: Sendable {
    /// The script it runs.
    public let script: RedisScript
    /// Its first key, which routes it (a script's keys share one hash tag, so one shard and one slot).
    public let routingKey: String
    /// The number of keys and arguments.
    let elementCount: Int
    /// Arguments still to come: the call is complete at 0.
    private var missing: Int
    /// The whole `EVALSHA` command as it goes on the wire.
    private(set) var bytes: ByteBuffer
    /// Where `numkeys` starts in `bytes`: an `EVAL` is its own head, the source, then these same bytes.
    private let numberOfKeysIndex: Int

    /// Starts a call of `script` with its keys; then exactly `argumentCount` arguments are appended.
    ///
    /// - Parameters:
    ///   - keys: The keys it touches (at least one: the first routes it).
    ///   - argumentCount: How many arguments will be appended.
    ///   - reservingCapacity: The arguments' bytes, if known, so the buffer is allocated once.
    public init(_ script: RedisScript, keys: [String], argumentCount: Int, reservingCapacity: Int = 0) {
        precondition(!keys.isEmpty, "a script call needs a key to be routed by")
        self.script = script
        self.routingKey = keys[0]
        self.elementCount = 3 + keys.count + argumentCount
        self.missing = argumentCount
        let keyBytes = keys.reduce(0) { $0 + $1.utf8.count + 16 }
        var bytes = ByteBufferAllocator().buffer(capacity: 80 + keyBytes + reservingCapacity + argumentCount * 16)
        bytes.writeRESPHeader(UInt8(ascii: "*"), self.elementCount)
        bytes.writeStaticString("$7\r\nEVALSHA\r\n$40\r\n")
        bytes.writeString(script.sha1)
        bytes.writeStaticString("\r\n")
        self.numberOfKeysIndex = bytes.writerIndex
        bytes.writeRESPHeader(UInt8(ascii: "$"), Self.decimalDigits(keys.count))
        bytes.writeDecimal(keys.count)
        bytes.writeStaticString("\r\n")
        for key in keys {
            bytes.writeRESPHeader(UInt8(ascii: "$"), key.utf8.count)
            bytes.writeString(key)
            bytes.writeStaticString("\r\n")
        }
        self.bytes = bytes
    }

    /// Whether every argument announced has been appended.
    public var isComplete: Bool { self.missing == 0 }

    /// Appends an argument: bytes.
    public mutating func append(_ argument: ByteBuffer) {
        self.countArgument()
        self.bytes.writeRESPHeader(UInt8(ascii: "$"), argument.readableBytes)
        self.bytes.writeImmutableBuffer(argument)
        self.bytes.writeStaticString("\r\n")
    }

    /// Appends an argument: a string's UTF-8.
    public mutating func append(_ argument: String) {
        self.countArgument()
        self.bytes.writeRESPHeader(UInt8(ascii: "$"), argument.utf8.count)
        self.bytes.writeString(argument)
        self.bytes.writeStaticString("\r\n")
    }

    /// Appends an argument: a number in decimal.
    public mutating func append(_ argument: Int) {
        self.countArgument()
        let digits = Self.decimalDigits(argument.magnitude) + (argument < 0 ? 1 : 0)
        self.bytes.writeRESPHeader(UInt8(ascii: "$"), digits)
        if argument < 0 { self.bytes.writeInteger(UInt8(ascii: "-")) }
        self.bytes.writeDecimal(argument.magnitude)
        self.bytes.writeStaticString("\r\n")
    }

    private mutating func countArgument() {
        precondition(self.missing > 0, "more arguments than the call announced")
        self.missing -= 1
    }

    /// The bytes it takes on the wire: what the pending budget counts.
    var size: Int { self.bytes.readableBytes }

    /// Appends the `EVALSHA` command, or with `withSource` the same call as `EVAL` (after a `NOSCRIPT`).
    func encode(into buffer: inout ByteBuffer, withSource: Bool) {
        guard withSource else {
            buffer.writeImmutableBuffer(self.bytes)
            return
        }
        buffer.writeRESPHeader(UInt8(ascii: "*"), self.elementCount)
        buffer.writeStaticString("$4\r\nEVAL\r\n")
        buffer.writeRESPHeader(UInt8(ascii: "$"), self.script.source.utf8.count)
        buffer.writeString(self.script.source)
        buffer.writeStaticString("\r\n")
        var rest = self.bytes
        rest.moveReaderIndex(to: self.numberOfKeysIndex)
        buffer.writeImmutableBuffer(rest)
    }

    private static func decimalDigits(_ value: some BinaryInteger) -> Int {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return digits
    }
}
