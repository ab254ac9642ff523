import Foundation
public import Logging
public import NIOCore
public import NIOPosix
public import NIOSSL
public import ServiceLifecycle
import ServiceLifecycleTestKit
public import Switchboard
public import SwitchboardServer
import Testing

/// A configuration for live tests: port 0 and short timeouts.
public func testConfiguration(
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

/// The logger of live tests: quiet unless `SWITCHBOARD_TEST_LOG_LEVEL` (e.g. `debug`) asks for more.
public let testLogger: Logger = {
    var logger = Logger(label: "switchboard.test")
    let level = ProcessInfo.processInfo.environment["SWITCHBOARD_TEST_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0) }
    logger.logLevel = level ?? .critical
    return logger
}()

/// Runs `app` on a live server on 127.0.0.1 and a free port for the duration of `body`; its connections live on
/// `eventLoopGroup`.
public func withServer<T: Sendable>(
    _ app: some Application,
    services: [any Service] = [],
    configuration: ServerConfiguration = testConfiguration(),
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    _ body: @Sendable (Server, Int) async throws -> T
) async throws -> T {
    let server = Server(
        application: app, configuration: configuration, eventLoopGroup: eventLoopGroup, logger: testLogger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        // The app's services (a survey, a presence store) run beside the server until the body is done.
        for service in services { group.addTask { try await service.run() } }
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
public final class RawClient {
    private var iterator: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    public let channel: any Channel
    private var pending = ByteBuffer()
    public private(set) var sawEOF = false

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
    ///
    /// - Parameter tls: TLS to speak over the connection (the server's name checked as `localhost`), or `nil`.
    public static func withConnection<T>(
        port: Int,
        deadline: TimeAmount = .seconds(10),
        tls: NIOSSLContext? = nil,
        _ body: (RawClient) async throws -> T
    ) async throws -> T {
        let asyncChannel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            NIOSSLClientHandler(context: tls, serverHostname: "localhost"))
                    }
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
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
    public func send(_ text: String) async throws {
        try await self.outbound.write(ByteBuffer(string: text))
    }

    /// Sends `bytes`.
    public func send(_ bytes: ByteBuffer) async throws {
        try await self.outbound.write(bytes)
    }

    /// Half-closes: the server sees end of input, the client can still read.
    public func closeOutput() {
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
    public func readToEnd() async throws -> String {
        while try await self.fill() {}
        return self.take(self.pending.readableBytes)
    }

    /// Exactly `count` bytes, or fewer if the stream ends first.
    public func read(count: Int) async throws -> String {
        while self.pending.readableBytes < count, try await self.fill() {}
        return self.take(min(count, self.pending.readableBytes))
    }

    /// Bytes up to and including `marker`, or all that came if the stream ended first.
    public func read(through marker: String) async throws -> String {
        while true {
            if let range = self.pending.readableBytesView.firstRange(of: Array(marker.utf8)) {
                let end = range.upperBound - self.pending.readableBytesView.startIndex
                return self.take(end)
            }
            guard try await self.fill() else { return self.take(self.pending.readableBytes) }
        }
    }

    /// One HTTP/1.1 response: head plus a body framed by Content-Length or chunked encoding.
    public func readResponse(isHEAD: Bool = false) async throws -> TestResponse {
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

    var pendingBytes: Int { self.pending.readableBytes }

    func fillForTesting() async throws -> Bool { try await self.fill() }

    func takeBytes(_ count: Int) -> ByteBuffer {
        self.pending.readSlice(length: count) ?? ByteBuffer()
    }

    private func take(_ count: Int) -> String {
        String(decoding: self.pending.readBytes(length: count) ?? [], as: UTF8.self)
    }
}

/// A parsed HTTP response, for assertions.
public struct TestResponse {
    public var statusLine: String
    public var status: Int
    public var headers: [(String, String)]
    public var body = ""
    public var wasChunked = false

    public init?(head: String) {
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

    public func header(_ name: String) -> String? {
        self.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

extension RawClient {
    /// Reads exactly `count` bytes as a buffer, or fewer if the stream ends first.
    public func readBytes(count: Int) async throws -> ByteBuffer {
        while self.pendingBytes < count, try await self.fillForTesting() {}
        return self.takeBytes(min(count, self.pendingBytes))
    }
}

/// Runs `app` on a live server inside swift-service-lifecycle's test harness, so `body` can trigger graceful
/// shutdown; returns once `body` is done and the server's `run()` has returned.
public func withGracefulShutdownServer(
    _ app: some Application,
    configuration: ServerConfiguration = testConfiguration(),
    _ body: @Sendable (_ port: Int, _ triggerShutdown: @Sendable () -> Void) async throws -> Void
) async throws {
    let server = Server(application: app, configuration: configuration, logger: testLogger)
    try await testGracefulShutdown { trigger in
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await server.run() }
            let port = try await server.listeningAddress().port!
            try await body(port) { trigger.triggerGracefulShutdown() }
            try await group.waitForAll()
        }
    }
}
