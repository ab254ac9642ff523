import HTTPTypes
import NIOCore
import NIOPosix
import ServiceLifecycle
import ServiceLifecycleTestKit
import Switchboard
import SwitchboardLocks
import SwitchboardServer
import SwitchboardTesting
import Synchronization
import Testing

@testable import SwitchboardWebSocket

/// Records close codes seen by server-side sockets.
private final class CloseLog: Sendable {
    private let codes = Locked<[UInt16]>([])
    private let stream = AsyncStream<UInt16>.makeStream()

    func record(_ code: WebSocketCloseCode) {
        self.codes.withLock { $0.append(code.rawValue) }
        self.stream.continuation.yield(code.rawValue)
    }

    func next() async -> UInt16? {
        var iterator = self.stream.stream.makeAsyncIterator()
        return await iterator.next()
    }
}

/// An app that echoes every message on every request's WebSocket.
private func echoing(_ configuration: WebSocketConfiguration) -> AnyApplication {
    AnyApplication { request in
        WebSocket.upgrade(request, configuration: configuration) { socket in
            socket.onMessage { socket, message in try? socket.send(message) }
        }
    }
}

/// Collects the server-side sockets as they open, and lets a test wait for them.
private final class OpenedSockets: Sendable {
    private let sockets = Locked<[WebSocket]>([])
    private let opened = AsyncStream<Void>.makeStream()

    /// An app that upgrades every request and records the socket.
    var app: AnyApplication {
        AnyApplication { request in
            WebSocket.upgrade(request, configuration: .init(pingInterval: nil)) { socket in
                socket.onOpen { socket in
                    self.sockets.withLock { $0.append(socket) }
                    self.opened.continuation.yield()
                }
            }
        }
    }

    /// Waits until `count` more sockets have opened; returns all opened so far.
    func wait(for count: Int) async -> [WebSocket] {
        var iterator = self.opened.stream.makeAsyncIterator()
        for _ in 0..<count { await iterator.next() }
        return self.sockets.withLock { $0 }
    }
}

@Suite("WebSocket lifecycle")
struct WebSocketLifecycleTests {
    @Test("What the set-up closure sends and closes reaches the client: it runs before the socket is in the pipeline")
    func setUpOperations() async throws {
        // A fan-out member attached in the set-up closure replays what was published during the handshake there,
        // and a gap held meanwhile closes the socket: both were once dropped (the socket had no channel yet).
        let app = AnyApplication { request in
            WebSocket.upgrade(request, configuration: .init(pingInterval: nil)) { socket in
                try? socket.send(text: "first")
                try? socket.send(text: "second")
                socket.close(code: .tryAgainLater, reason: "gap")
            }
        }
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                #expect(try await client.handshake(path: "/").status == 101)
                #expect(try await client.readFrame()?.text == "first")
                #expect(try await client.readFrame()?.text == "second")
                let close = try await client.readFrame()
                #expect(close?.opcode == 0x8 && close?.closeCode == 1013)
            }
        }
    }

    @Test("A client that stops reading is closed as a slow consumer once 256 KiB are queued; memory stays bounded")
    func slowConsumer() async throws {
        let chunk = ByteBuffer(repeating: 0x78, count: 64 * 1024)
        try await expectSlowConsumerClosed { socket in
            (0..<16).allSatisfy { _ in (try? socket.send(binary: chunk)) != nil }
        }
    }

    @Test("A peer that never answers pings is closed after the pong timeout; one that answers stays")
    func keepalive() async throws {
        // A pong timeout of seconds, not milliseconds: the answering client below must not be closed because a loaded
        // machine (the whole suite in parallel on two cores) kept it from answering for half a second.
        let configuration = WebSocketConfiguration(pingInterval: .milliseconds(200), pongTimeout: .seconds(2))
        let app = echoing(configuration)
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake()
                let start = ContinuousClock.now
                var pings = 0
                while let frame = try await client.readFrame() {
                    if frame.opcode == 0x9 { pings += 1 }
                    if frame.opcode == 0x8 {
                        #expect(frame.closeCode == 1001)
                        break
                    }
                }
                #expect(pings >= 1)
                #expect(ContinuousClock.now - start < .seconds(5))
            }
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake()
                let until = ContinuousClock.now + .milliseconds(1200)
                while ContinuousClock.now < until {
                    let frame = try #require(try await client.readFrame())
                    #expect(frame.opcode == 0x9, "only pings while we answer them")
                    try await client.send(clientFrame(0xA, Array(frame.payload.readableBytesView)))
                }
                try await client.send(clientFrame(0x1, text: "still open"))
                var frame = try #require(try await client.readFrame())
                while frame.opcode == 0x9 { frame = try #require(try await client.readFrame()) }
                #expect(frame.text == "still open")
            }
        }
    }

    @Test("A loop's keepalive scheduler exists while it has sockets with keepalive, and goes with the last")
    func keepaliveSchedulerGoesWithTheLastSocket() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let app = echoing(WebSocketConfiguration(pingInterval: .seconds(30)))
        try await withServer(app, eventLoopGroup: group) { _, port in
            #expect(!KeepaliveScheduler.isActive(on: loop))
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake()
                try await client.send(clientFrame(0x1, text: "hi"))
                #expect(try await client.readFrame()?.text == "hi")
                #expect(KeepaliveScheduler.isActive(on: loop))
                try await client.send(clientFrame(0x8, closePayload(1000)))
                _ = try await client.readFrame()
            }
            #expect(await eventually { !KeepaliveScheduler.isActive(on: loop) })
        }
        try await group.shutdownGracefully()
    }

    @Test("The idle timeout closes a silent connection with 1001; traffic keeps it open")
    func idleTimeout() async throws {
        // 2 s against ticks 150 ms apart: a margin a loaded machine (a release build beside the tests) keeps.
        let configuration = WebSocketConfiguration(pingInterval: nil, idleTimeout: .seconds(2))
        let app = echoing(configuration)
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake()
                for i in 0..<4 {
                    try await Task.sleep(for: .milliseconds(150))
                    try await client.send(clientFrame(0x1, text: "tick \(i)"))
                    #expect(try await client.readFrame()?.text == "tick \(i)")
                }
                let start = ContinuousClock.now
                let close = try #require(try await client.readFrame())
                #expect(close.closeCode == 1001)
                #expect(ContinuousClock.now - start < .seconds(4))
            }
        }
    }

    @Test("PreparedMessage: one frame written to many sockets, compressed once for deflate peers")
    func preparedMessage() async throws {
        let opened = OpenedSockets()
        try await withServer(opened.app) { _, port in
            try await RawClient.withConnection(port: port) { plain in
                _ = try await plain.handshake()
                try await RawClient.withConnection(port: port) { compressed in
                    _ = try await compressed.handshake(headers: ["Sec-WebSocket-Extensions: permessage-deflate"])
                    let sockets = await opened.wait(for: 2)
                    let text = String(repeating: "fan-out ", count: 64)
                    let prepared = PreparedMessage(.text(text))
                    for socket in sockets {
                        try await socket.eventLoop.submit { try socket.send(prepared) }.value()
                    }
                    let plainFrame = try #require(try await plain.readFrame())
                    #expect(!plainFrame.rsv1)
                    #expect(plainFrame.text == text)
                    let compressedFrame = try #require(try await compressed.readFrame())
                    #expect(compressedFrame.rsv1)
                    var payload = compressedFrame.payload
                    payload.writeBytes([0x00, 0x00, 0xFF, 0xFF])
                    var inflated = ByteBuffer()
                    _ = try Inflater().inflate(payload, into: &inflated, limit: 1 << 20)
                    #expect(String(buffer: inflated) == text)
                    // The same storage is shared: framing and compression happened once.
                    let deflate = try #require(
                        PerMessageDeflateNegotiation.negotiate(offers: ["permessage-deflate"], configuration: .init()))
                    let encoding = FrameEncoding(deflate)
                    #expect(encoding.isCompressed)
                    #expect(prepared.frame(for: encoding) == prepared.frame(for: encoding))
                }
            }
        }
    }

    @Test("A batch of prepared messages goes out in order with one flush; it counts against the slow-consumer cap")
    func preparedBatch() async throws {
        let opened = OpenedSockets()
        try await withServer(opened.app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake()
                let socket = try #require(await opened.wait(for: 1).first)
                let batch = (0..<50).map { PreparedMessage(.text("message \($0)")) }
                try await socket.eventLoop.submit { try socket.send(batch) }.value()
                for i in 0..<50 {
                    #expect(try await client.readFrame()?.text == "message \(i)")
                }
            }
        }
        // A client that does not read: batches of 1 MiB fill the socket buffers, then the 256 KiB cap closes it.
        let batch = Array(repeating: PreparedMessage(.binary(ByteBuffer(repeating: 0x78, count: 64 * 1024))), count: 16)
        try await expectSlowConsumerClosed { socket in (try? socket.send(batch)) != nil }
    }

    @Test("Graceful shutdown closes every socket with 1001; sending after close fails clearly")
    func shutdownClosesWith1001() async throws {
        let opened = OpenedSockets()
        let closedSocket = Locked<WebSocket?>(nil)
        try await withGracefulShutdownServer(opened.app) { port, triggerShutdown in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake()
                let socket = await opened.wait(for: 1).first
                closedSocket.withLock { $0 = socket }
                triggerShutdown()
                let frame = try #require(try await client.readFrame())
                #expect(frame.opcode == 0x8)
                #expect(frame.closeCode == 1001)
                try await client.send(clientFrame(0x8, closePayload(1001)))
                #expect(try await client.readToEnd() == "")
            }
        }
        let socket = try #require(closedSocket.withLock { $0 })
        #expect(throws: WebSocketError.closed) { try socket.send(text: "too late") }
    }
}

/// Floods a client that does not read, from the event loop: `sendMebibyte` sends 1 MiB and says whether the socket
/// took it, up to 64 MiB in all, far more than socket buffers hold. The 256 KiB cap must close the socket with 1008
/// before 32 MiB were queued.
private func expectSlowConsumerClosed(sendMebibyte: @escaping @Sendable (WebSocket) -> Bool) async throws {
    let log = CloseLog()
    let sent = Atomic<Int>(0)
    let counters = WebSocketCounters()
    let configuration = WebSocketConfiguration(maxQueuedBytes: 256 * 1024, pingInterval: nil, counters: counters)
    let app = AnyApplication { request in
        WebSocket.upgrade(request, configuration: configuration) { socket in
            socket.onClose { _, code, _ in log.record(code) }
            socket.onOpen { socket in
                for _ in 0..<64 {
                    guard sendMebibyte(socket) else { return }
                    sent.add(1 << 20, ordering: .relaxed)
                }
            }
        }
    }
    try await withServer(app) { _, port in
        try await RawClient.withConnection(port: port, deadline: .seconds(20)) { client in
            _ = try await client.handshake()
            #expect(await log.next() == 1008)
            #expect(sent.load(ordering: .relaxed) < 32 * 1024 * 1024, "only socket buffers plus the cap are queued")
            #expect(counters.snapshot.slowConsumersClosed == 1, "counted")
        }
    }
}
