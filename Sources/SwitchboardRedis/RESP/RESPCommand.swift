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
        buffer.writeStaticString("*")
        buffer.writeString(String(self.arguments.count))
        buffer.writeStaticString("\r\n")
        for var argument in self.arguments {
            buffer.writeStaticString("$")
            buffer.writeString(String(argument.readableBytes))
            buffer.writeStaticString("\r\n")
            buffer.writeBuffer(&argument)
            buffer.writeStaticString("\r\n")
        }
    }
}
