public import NIOCore

/// A command to send: an array of bulk strings, the only form Redis accepts from clients.
public struct RESPCommand: Sendable, Equatable {
    /// The command name and its arguments.
    public var arguments: [ByteBuffer]

    /// Creates a command from its name and arguments.
    public init(_ name: String, _ arguments: [ByteBuffer] = []) {
        self.arguments = [ByteBuffer(string: name)] + arguments
    }

    /// Creates a command from string arguments.
    public init(_ name: String, _ arguments: String...) {
        self.init(name, arguments.map { ByteBuffer(string: $0) })
    }

    /// Appends the command's wire form to `buffer`.
    public func encode(into buffer: inout ByteBuffer) {
        buffer.writeRESPHeader(UInt8(ascii: "*"), self.arguments.count)
        for argument in self.arguments {
            buffer.writeRESPHeader(UInt8(ascii: "$"), argument.readableBytes)
            buffer.writeImmutableBuffer(argument)
            buffer.writeStaticString("\r\n")
        }
    }

    /// The bytes ``encode(into:)`` writes, near enough (for reserving capacity and for the pending budget).
    var encodedSize: Int {
        self.arguments.reduce(16) { $0 + $1.readableBytes + 16 }
    }
}

extension ByteBuffer {
    /// `<type><count>\r\n`, the count in decimal without a `String`.
    mutating func writeRESPHeader(_ type: UInt8, _ count: Int) {
        self.writeInteger(type)
        if count < 10 {
            self.writeInteger(UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: count))
        } else {
            self.writeDecimal(count)
        }
        self.writeStaticString("\r\n")
    }

    /// A non-negative number in decimal, without a `String`.
    mutating func writeDecimal(_ value: some BinaryInteger) {
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: more than any 64-bit number has digits
        withUnsafeMutableBytes(of: &digits) { scratch in
            var rest = value
            var index = scratch.count
            repeat {
                index -= 1
                scratch[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: rest % 10)
                rest /= 10
            } while rest > 0
            self.writeBytes(UnsafeRawBufferPointer(rebasing: scratch[index...]))
        }
    }
}
