public import NIOCore

/// The body of a ``Response``: nothing, bytes known up front, or a stream written by a closure.
///
/// ```swift
/// ResponseBody(string: "hello\n")
/// ResponseBody { writer in
///     for i in 1...3 { try await writer.write(ByteBuffer(string: "line \(i)\n")) }
/// }
/// ```
public struct ResponseBody: Sendable {
    package enum Storage: Sendable {
        case empty
        case buffer(ByteBuffer)
        case stream(length: Int?, write: @Sendable (any ResponseBodyWriter) async throws -> Void)
    }

    package let storage: Storage

    /// No body.
    public static var empty: ResponseBody { ResponseBody(storage: .empty) }

    private init(storage: Storage) {
        self.storage = storage
    }

    /// A body of the bytes in `buffer`.
    public init(buffer: ByteBuffer) {
        self.storage = .buffer(buffer)
    }

    /// A body of `string`'s UTF-8 bytes.
    public init(string: String) {
        self.storage = .buffer(ByteBuffer(string: string))
    }

    /// A streamed body that `write` produces; the server calls it once, when it sends the body.
    ///
    /// - Parameters:
    ///   - length: The exact length, if known, so the server can send `Content-Length` instead of
    ///     chunked framing.
    ///   - write: Writes the body through the given writer, then returns.
    public init(length: Int? = nil, _ write: @escaping @Sendable (any ResponseBodyWriter) async throws -> Void) {
        self.storage = .stream(length: length, write: write)
    }

    /// The body's length when it is known without running it: `0` for none, the byte count of a buffer,
    /// the declared length of a stream.
    public var knownLength: Int? {
        switch self.storage {
        case .empty: 0
        case .buffer(let buffer): buffer.readableBytes
        case .stream(let length, _): length
        }
    }

    /// The bytes of a fixed body, or `nil` for a stream.
    public var buffer: ByteBuffer? {
        switch self.storage {
        case .empty: ByteBuffer()
        case .buffer(let buffer): buffer
        case .stream: nil
        }
    }

    /// Runs the body into `writer`: writes a fixed body at once, or calls a stream's closure.
    ///
    /// - Throws: What the writer or the stream's closure throws.
    public func write(into writer: any ResponseBodyWriter) async throws {
        switch self.storage {
        case .empty: break
        case .buffer(let buffer): try await writer.write(buffer)
        case .stream(_, let write): try await write(writer)
        }
    }
}

/// Where a streamed ``ResponseBody`` writes its bytes.
public protocol ResponseBodyWriter: Sendable {
    /// Writes `buffer` as the next part of the body, suspending while the peer is slow.
    ///
    /// - Throws: When the connection is gone.
    func write(_ buffer: ByteBuffer) async throws
}
