import Logging
import NIOCore
import NIOEmbedded
import SwitchboardTesting
import Testing

@testable import SwitchboardWebSocket

/// Records what a socket's callbacks and close observers saw.
private final class Record: WebSocketCloseObserver {
    var messages: [String] = []
    var closes: [UInt16] = []
    var observed = 0

    func webSocketDidClose() { self.observed += 1 }
}

/// The handler on an `EmbeddedChannel`: exact bytes in and out, no sockets, no threads.
@Suite("WebSocket handler on EmbeddedChannel")
struct WebSocketHandlerTests {
    private func makeSocket(
        _ record: Record, deflate: NegotiatedDeflate? = nil
    ) throws -> (EmbeddedChannel, WebSocket) {
        let channel = EmbeddedChannel()
        let configuration = WebSocketConfiguration(pingInterval: nil)
        let handler = WebSocketHandler(configuration: configuration, deflate: deflate, logger: Logger(label: "test"))
        let socket = WebSocket(
            handler: handler, eventLoop: channel.eventLoop, subprotocol: nil, logger: handler.logger, withInbox: false)
        handler.socket = socket
        socket.onMessage { socket, message in
            record.messages.append(String(buffer: message.data))
            try? socket.send(text: "echo: " + String(buffer: message.data))
        }
        socket.onClose { _, code, _ in record.closes.append(code.rawValue) }
        #expect(socket.addCloseObserver(record))
        try channel.pipeline.syncOperations.addHandler(handler)
        return (channel, socket)
    }

    private func bytes(_ buffer: ByteBuffer?) -> [UInt8] {
        buffer.map { Array($0.readableBytesView) } ?? []
    }

    @Test("A masked text frame, in two reads, becomes one message; the reply is one unmasked frame, byte for byte")
    func messageAndReply() throws {
        let record = Record()
        let (channel, _) = try self.makeSocket(record)
        var frame = clientFrame(0x1, text: "hi")
        let head = frame.readSlice(length: 3)!
        try channel.writeInbound(head)
        #expect(record.messages.isEmpty)
        try channel.writeInbound(frame)
        #expect(record.messages == ["hi"])
        #expect(self.bytes(try channel.readOutbound(as: ByteBuffer.self)) == [0x81, 0x08] + Array("echo: hi".utf8))
        // A ping is answered with a pong carrying the same payload.
        try channel.writeInbound(clientFrame(0x9, Array("p".utf8)))
        #expect(self.bytes(try channel.readOutbound(as: ByteBuffer.self)) == [0x8A, 0x01, UInt8(ascii: "p")])
    }

    @Test("The peer's close is echoed with its code; onClose and close observers run once; sends then throw")
    func closeHandshake() throws {
        let record = Record()
        let (channel, socket) = try self.makeSocket(record)
        try channel.writeInbound(clientFrame(0x8, closePayload(1001, Array("bye".utf8))))
        #expect(self.bytes(try channel.readOutbound(as: ByteBuffer.self)) == [0x88, 0x02, 0x03, 0xE9])
        #expect(!socket.isOpen)
        #expect(throws: WebSocketError.closed) { try socket.send(text: "late") }
        try? channel.close().wait()
        #expect(record.closes == [1001])
        #expect(record.observed == 1)
    }

    @Test("An unmasked client frame fails the connection with 1002 and no data is delivered")
    func unmaskedFrame() throws {
        let record = Record()
        let (channel, socket) = try self.makeSocket(record)
        try channel.writeInbound(clientFrame(0x1, Array("x".utf8), masked: false))
        #expect(record.messages.isEmpty)
        #expect(self.bytes(try channel.readOutbound(as: ByteBuffer.self)) == [0x88, 0x02, 0x03, 0xEA])
        #expect(!socket.isOpen)
        try? channel.close().wait()
        #expect(record.closes == [1002])
    }

    @Test("Observers added after the end are refused; a removed observer is not told")
    func observers() throws {
        let record = Record()
        let (channel, socket) = try self.makeSocket(record)
        let removed = Record()
        #expect(socket.addCloseObserver(removed))
        socket.removeCloseObserver(removed)
        try? channel.close().wait()
        #expect(record.observed == 1 && removed.observed == 0)
        #expect(!socket.addCloseObserver(Record()), "the connection has ended")
        #expect(record.closes == [1006], "no close handshake")
    }

    @Test("A compressed message that ends its deflate stream (BFINAL) is delivered; the connection goes on")
    func finalDeflateBlock() throws {
        // Found by FuzzWebSocketFrames: such a message hung the event loop in `inflate` (a denial of service).
        let deflate = NegotiatedDeflate(
            serverNoContextTakeover: false, clientNoContextTakeover: false, serverWindowBits: 15,
            minimumSizeToCompress: 1024, compressionLevel: 6, responseHeader: "permessage-deflate")
        let record = Record()
        let (channel, _) = try self.makeSocket(record, deflate: deflate)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let final: [UInt8] = [203, 72, 205, 201, 201, 7, 0]  // "hello" with BFINAL (zlib's Z_FINISH)
        var frame = clientFrame(0x1, final)
        frame.setInteger(frame.getInteger(at: 0, as: UInt8.self)! | 0x40, at: 0)  // RSV1: compressed
        try channel.writeInbound(frame)
        var next = clientFrame(0x1, [202, 72, 205, 201, 201, 7, 0])  // "hello", sync-flushed, tail removed
        next.setInteger(next.getInteger(at: 0, as: UInt8.self)! | 0x40, at: 0)
        try channel.writeInbound(next)
        #expect(record.messages == ["hello", "hello"])
        #expect(channel.isActive)
    }

    @Test("A send whose write ends the connection returns before onClose runs: callbacks are never re-entrant")
    func noReentrantClose() throws {
        let channel = EmbeddedChannel()
        // Plays a peer that is gone: the first write closes the connection, as a failed write does.
        try channel.pipeline.syncOperations.addHandler(CloseOnWrite())
        let handler = WebSocketHandler(
            configuration: .init(pingInterval: nil), deflate: nil, logger: Logger(label: "test"))
        let socket = WebSocket(
            handler: handler, eventLoop: channel.eventLoop, subprotocol: nil, logger: handler.logger, withInbox: false)
        handler.socket = socket
        let order = Record()
        socket.onMessage { socket, _ in
            #expect(throws: Never.self) { try socket.send(text: "reply") }
            order.messages.append("send returned")
        }
        socket.onClose { _, code, _ in order.messages.append("onClose \(code.rawValue)") }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.writeInbound(clientFrame(0x1, text: "hi"))
        #expect(order.messages == ["send returned"], "not inside the send")
        channel.embeddedEventLoop.run()
        #expect(order.messages == ["send returned", "onClose 1006"])
    }
}

/// Closes the channel on the first write, failing the write.
private final class CloseOnWrite: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.fail(ChannelError.ioOnClosedChannel)
        context.close(promise: nil)
    }
}
