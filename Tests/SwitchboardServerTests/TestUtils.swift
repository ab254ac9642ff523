import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Switchboard
import SwitchboardServer
import Testing

/// A configuration for live tests: port 0 and short timeouts.
func testConfiguration(
    idleTimeout: TimeAmount = .seconds(30),
    headReadTimeout: TimeAmount = .seconds(10),
    maxHeadSize: Int = 16 * 1024,
    maxBodySize: Int = 1024 * 1024
) -> ServerConfiguration {
    ServerConfiguration(
        host: "127.0.0.1",
        port: 0,
        maxHeadSize: maxHeadSize,
        maxBodySize: maxBodySize,
        idleTimeout: idleTimeout,
        headReadTimeout: headReadTimeout
    )
}

let testLogger: Logger = {
    var logger = Logger(label: "switchboard.test")
    logger.logLevel = .critical
    return logger
}()

/// Runs `app` on a live server on 127.0.0.1 and a free port for the duration of `body`.
func withServer<T: Sendable>(
    _ app: some Application,
    configuration: ServerConfiguration = testConfiguration(),
    _ body: @Sendable (Server, Int) async throws -> T
) async throws -> T {
    let server = Server(application: app, configuration: configuration, logger: testLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await server.run() }
        let port = try await server.listeningAddress().port!
        do {
            let result = try await body(server, port)
            group.cancelAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}

/// A raw TCP client: it sends exact bytes and sees exact bytes, like `nc`.
///
/// The connection is force-closed after `deadline`, so a server that never answers makes a test fail on
/// missing bytes instead of hanging.
final class RawClient {
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let channel: any Channel
    private var pending = ByteBuffer()
    private(set) var sawEOF = false

    private init(
        iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>,
        channel: any Channel
    ) {
        self.iterator = iterator
        self.outbound = outbound
        self.channel = channel
    }

    /// Connects to `port`, runs `body`, closes.
    static func withConnection<T>(
        port: Int,
        deadline: TimeAmount = .seconds(10),
        _ body: (RawClient) async throws -> T
    ) async throws -> T {
        let asyncChannel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                }
            }
        let channel = asyncChannel.channel
        let guardTask = channel.eventLoop.scheduleTask(in: deadline) { channel.close(promise: nil) }
        defer { guardTask.cancel() }
        return try await asyncChannel.executeThenClose { inbound, outbound in
            let client = RawClient(iterator: inbound.makeAsyncIterator(), outbound: outbound, channel: channel)
            return try await body(client)
        }
    }

    /// Sends the UTF-8 bytes of `text`.
    func send(_ text: String) async throws {
        try await self.outbound.write(ByteBuffer(string: text))
    }

    /// Sends `bytes`.
    func send(_ bytes: ByteBuffer) async throws {
        try await self.outbound.write(bytes)
    }

    /// Half-closes: the server sees end of input, the client can still read.
    func closeOutput() {
        self.outbound.finish()
    }

    /// Reads more bytes into the pending buffer; `false` at end of stream.
    private func fill() async throws -> Bool {
        if self.sawEOF { return false }
        do {
            guard var chunk = try await self.iterator.next() else {
                self.sawEOF = true
                return false
            }
            self.pending.writeBuffer(&chunk)
            return true
        } catch {
            self.sawEOF = true
            return false
        }
    }

    /// Everything until the server closes (or the deadline).
    func readToEnd() async throws -> String {
        while try await self.fill() {}
        return self.take(self.pending.readableBytes)
    }

    /// Exactly `count` bytes, or fewer if the stream ends first.
    func read(count: Int) async throws -> String {
        while self.pending.readableBytes < count, try await self.fill() {}
        return self.take(min(count, self.pending.readableBytes))
    }

    /// Bytes up to and including `marker`, or all that came if the stream ended first.
    func read(through marker: String) async throws -> String {
        while true {
            if let range = self.pending.readableBytesView.firstRange(of: Array(marker.utf8)) {
                let end = range.upperBound - self.pending.readableBytesView.startIndex
                return self.take(end)
            }
            guard try await self.fill() else { return self.take(self.pending.readableBytes) }
        }
    }

    /// One HTTP/1.1 response: head plus a body framed by Content-Length or chunked encoding.
    func readResponse(isHEAD: Bool = false) async throws -> TestResponse {
        let head = try await self.read(through: "\r\n\r\n")
        var response = try #require(TestResponse(head: head), "no response head in \(head.debugDescription)")
        if isHEAD || response.status == 204 || response.status == 304 || response.status / 100 == 1 {
            return response
        }
        if let length = response.header("content-length").flatMap({ Int($0) }) {
            response.body = try await self.read(count: length)
        } else if response.header("transfer-encoding")?.lowercased() == "chunked" {
            var body = ""
            while true {
                let sizeLine = try await self.read(through: "\r\n")
                // "\r\n" is one Character, so keep the hex digits rather than dropping a count of characters.
                let size = try #require(
                    Int(sizeLine.filter(\.isHexDigit), radix: 16), "bad chunk size \(sizeLine.debugDescription)")
                if size == 0 {
                    _ = try await self.read(through: "\r\n")
                    break
                }
                body += try await self.read(count: size)
                _ = try await self.read(count: 2)
            }
            response.body = body
            response.wasChunked = true
        } else {
            response.body = try await self.readToEnd()
        }
        return response
    }

    private func take(_ count: Int) -> String {
        String(decoding: self.pending.readBytes(length: count) ?? [], as: UTF8.self)
    }
}

/// A parsed HTTP response, for assertions.
struct TestResponse {
    var statusLine: String
    var status: Int
    var headers: [(String, String)]
    var body = ""
    var wasChunked = false

    init?(head: String) {
        var lines = head.split(separator: "\r\n", omittingEmptySubsequences: true).map(String.init)
        guard !lines.isEmpty else { return nil }
        self.statusLine = lines.removeFirst()
        let parts = self.statusLine.split(separator: " ", maxSplits: 2)
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        self.status = status
        self.headers = lines.compactMap { line in
            guard let colon = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<colon]), String(line[line.index(after: colon)...].drop(while: { $0 == " " })))
        }
    }

    func header(_ name: String) -> String? {
        self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}
