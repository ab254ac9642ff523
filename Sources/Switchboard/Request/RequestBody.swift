import HTTPTypes
public import NIOCore

/// The body of a request: a stream of byte buffers that can be read once.
///
/// Read it whole with ``collect(upTo:)``, which refuses to buffer more than a limit you choose, or
/// chunk by chunk with `for try await chunk in request.body`. A server that receives
/// `Expect: 100-continue` sends the interim `100 Continue` when the app first reads the body.
///
/// - Important: A body from a connection is single-pass: a second iteration yields nothing.
public struct RequestBody: AsyncSequence, Sendable {
    public typealias Element = ByteBuffer
    public typealias Failure = any Error

    fileprivate enum Storage: Sendable {
        case buffer(ByteBuffer)
        case stream(any RequestBodySource)
    }

    private let storage: Storage

    /// The length the client announced with `Content-Length`, if any.
    public let expectedLength: Int?

    /// A body with no bytes.
    public static var empty: RequestBody { RequestBody(buffer: ByteBuffer()) }

    /// A body holding `buffer`, for tests and synthetic requests.
    public init(buffer: ByteBuffer) {
        self.storage = .buffer(buffer)
        self.expectedLength = buffer.readableBytes
    }

    /// A body that `source` produces incrementally; used by servers.
    package init(source: any RequestBodySource, expectedLength: Int?) {
        self.storage = .stream(source)
        self.expectedLength = expectedLength
    }

    /// Reads the whole body into one buffer.
    ///
    /// - Parameter maxBytes: The most bytes to accept.
    /// - Returns: The body's bytes.
    /// - Throws: ``RequestBodyError/tooLarge(limit:)`` as soon as the body is known to exceed `maxBytes`
    ///   (before reading anything when `Content-Length` already says so), or the connection's error.
    public func collect(upTo maxBytes: Int) async throws -> ByteBuffer {
        if let expectedLength, expectedLength > maxBytes {
            throw RequestBodyError.tooLarge(limit: maxBytes)
        }
        switch self.storage {
        case .buffer(let buffer):
            return buffer
        case .stream:
            var collected: ByteBuffer?
            for try await var chunk in self {
                let total = (collected?.readableBytes ?? 0) + chunk.readableBytes
                guard total <= maxBytes else { throw RequestBodyError.tooLarge(limit: maxBytes) }
                if collected == nil {
                    collected = chunk
                } else {
                    collected!.writeBuffer(&chunk)
                }
            }
            return collected ?? ByteBuffer()
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        private var buffer: ByteBuffer?
        private let source: (any RequestBodySource)?

        fileprivate init(storage: Storage) {
            switch storage {
            case .buffer(let buffer):
                self.buffer = buffer.readableBytes > 0 ? buffer : nil
                self.source = nil
            case .stream(let source):
                self.buffer = nil
                self.source = source
            }
        }

        public mutating func next() async throws -> ByteBuffer? {
            if let buffer = self.buffer {
                self.buffer = nil
                return buffer
            }
            return try await self.source?.nextBodyChunk()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(storage: self.storage)
    }
}

/// Produces the chunks of a streamed request body; implemented by servers.
package protocol RequestBodySource: Sendable {
    /// The next chunk, or `nil` after the last one.
    func nextBodyChunk() async throws -> ByteBuffer?
}

/// Why a request body could not be read.
public struct RequestBodyError: Error, Hashable, CustomStringConvertible, HTTPResponseConvertible {
    private enum Kind: Hashable {
        case tooLarge(Int)
        case concurrentRead
        case timedOut
        case malformed
    }

    private let kind: Kind

    /// The body is larger than `limit` bytes. Servers answer `413 Content Too Large`.
    public static func tooLarge(limit: Int) -> RequestBodyError { .init(kind: .tooLarge(limit)) }

    /// Two tasks read the same connection at once, which a body does not support.
    public static var concurrentRead: RequestBodyError { .init(kind: .concurrentRead) }

    /// The client sent no byte of the body for as long as the server waits (its body-read timeout). Servers answer
    /// `408 Request Timeout`.
    public static var timedOut: RequestBodyError { .init(kind: .timedOut) }

    /// The body's framing is broken (an invalid chunk size, a chunk longer than it said). Servers answer
    /// `400 Bad Request` and close the connection.
    public static var malformed: RequestBodyError { .init(kind: .malformed) }

    public var description: String {
        switch self.kind {
        case .tooLarge(let limit): "request body is larger than \(limit) bytes"
        case .concurrentRead: "request body read by two tasks at once"
        case .timedOut: "the client stopped sending the request body"
        case .malformed: "the request body's chunked framing is invalid"
        }
    }

    public var response: Response {
        switch self.kind {
        case .tooLarge: Response(status: .contentTooLarge, body: .init(string: "Content Too Large\n"))
        case .concurrentRead: Response(status: .internalServerError, body: .init(string: "Internal Server Error\n"))
        case .timedOut: Response(status: .requestTimeout, body: .init(string: "Request Timeout\n"))
        case .malformed:
            Response(status: .badRequest, body: .init(string: "Bad Request: the chunked framing is invalid\n"))
        }
    }
}
