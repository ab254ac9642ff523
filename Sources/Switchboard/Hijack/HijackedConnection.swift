public import NIOCore

/// A connection taken over from the HTTP server by a hijack: Rack's `rack.hijack_io`, in two views.
///
/// - The **byte view** (``read()``, ``inbound``, ``write(_:)-(ByteBuffer)``, ``close()``) suits simple
///   protocols, like Tubesock's IO.
/// - The **channel view** (``channel``, ``installHandlers(_:)``) lets a protocol such as WebSocket put its own
///   `ChannelHandler`s in front of the socket.
///
/// What the byte view delivers, in order: the rest of the hijacked request's body that the app had not
/// read (with any chunked framing removed), then every byte the client sent after that request, starting
/// with the bytes the HTTP parser had received but not consumed.
///
/// After an `Upgrade` or `CONNECT` request the HTTP parser stops at the end of that request, so every later
/// byte reaches the hijacker, even bytes that arrived in the same TCP packet as the head. After any other
/// request the parser keeps going: bytes the client pipelined behind the hijacked request may already have
/// been parsed as further requests, and those requests are discarded (logged at debug level). Clients of a
/// plain-request hijack should therefore wait for the hijacker to speak first.
///
/// - Important: The server never reads, writes, times out or closes a hijacked connection: closing it is the
///   hijacker's job. The hijacker runs inside the server's task tree, so it can observe graceful shutdown
///   (for example with swift-service-lifecycle's `withGracefulShutdownHandler`).
public struct HijackedConnection: Sendable {
    /// The NIO channel of the connection, for installing protocol handlers.
    public let channel: any Channel

    private let io: any HijackedIO

    /// Wraps `io`; used by servers.
    package init(channel: any Channel, io: any HijackedIO) {
        self.channel = channel
        self.io = io
    }

    /// Reads the next bytes the client sent.
    ///
    /// - Returns: The bytes, or `nil` once the client has closed its side of the connection.
    /// - Throws: When the connection failed, or after ``installHandlers(_:)`` moved the bytes elsewhere.
    public func read() async throws -> ByteBuffer? {
        try await self.io.read()
    }

    /// The client's bytes as an async sequence, ending when the client closes its side.
    public var inbound: Inbound { Inbound(io: self.io) }

    /// Writes `buffer` to the client and flushes it, suspending while the client is slow.
    ///
    /// - Throws: When the connection is closed.
    public func write(_ buffer: ByteBuffer) async throws {
        try await self.io.write(buffer)
    }

    /// Writes the UTF-8 bytes of `string` to the client and flushes them.
    ///
    /// - Throws: When the connection is closed.
    public func write(_ string: String) async throws {
        try await self.io.write(ByteBuffer(string: string))
    }

    /// Closes the connection for both directions.
    public func close() async throws {
        try await self.io.close()
    }

    /// Closes the sending direction only (TCP half-close), so the client sees end of stream while it can
    /// still send.
    ///
    /// - Throws: When the connection is already closed.
    public func closeOutput() async throws {
        try await self.io.closeOutput()
    }

    /// Puts protocol handlers in front of the socket, and gives them every byte not yet read through
    /// the byte view.
    ///
    /// `makeHandlers` runs on the channel's event loop; the handlers it returns are added at the front of the
    /// pipeline in order, so the first receives raw bytes from the socket and the last one's writes go to
    /// the socket. Bytes that arrived before (including ones pipelined right behind the request head) and an
    /// end of input are then replayed into them.
    ///
    /// From then on the handlers own the connection: ``read()`` throws ``HijackError/handlersInstalled``, and once
    /// the hijack closure has returned the server takes its own relay handlers out of the pipeline (an idle
    /// WebSocket should cost as little as possible), so writes through this byte view fail from then on too.
    ///
    /// - Parameter makeHandlers: Creates the handlers, on the event loop.
    /// - Throws: When the connection is closed or the byte view was used already.
    public func installHandlers(
        _ makeHandlers: @escaping @Sendable () throws -> [any ChannelHandler]
    ) async throws {
        try await self.io.installHandlers(makeHandlers)
    }

    /// The client's bytes after a hijack.
    public struct Inbound: AsyncSequence, Sendable {
        public typealias Element = ByteBuffer
        public typealias Failure = any Error
        fileprivate let io: any HijackedIO

        public struct AsyncIterator: AsyncIteratorProtocol {
            fileprivate let io: any HijackedIO
            public mutating func next() async throws -> ByteBuffer? {
                try await self.io.read()
            }
        }

        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(io: self.io)
        }
    }
}

/// The server side of a hijacked connection.
package protocol HijackedIO: Sendable {
    func read() async throws -> ByteBuffer?
    func write(_ buffer: ByteBuffer) async throws
    func close() async throws
    func closeOutput() async throws
    func installHandlers(_ makeHandlers: @escaping @Sendable () throws -> [any ChannelHandler]) async throws
}
