import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import SwitchboardTesting
import Testing

@testable import SwitchboardServer

/// Exact bytes and deterministic time: the connection handler and gate on an `EmbeddedChannel`.
@Suite("Connection handler on EmbeddedChannel")
struct HTTPConnectionHandlerTests {
    private func makeChannel(idle: TimeAmount = .seconds(60), head: TimeAmount = .seconds(10)) throws -> EmbeddedChannel
    {
        let channel = EmbeddedChannel()
        let gate = HalfCloseGate()
        try channel.pipeline.syncOperations.addHandler(gate)
        try channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        )
        try channel.pipeline.syncOperations.addHandler(
            HTTPConnectionHandler(idleTimeout: idle, headReadTimeout: head, halfCloseGate: gate, logger: testLogger)
        )
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    @Test("A head not complete within the head-read timeout gets exactly a 408 and a close")
    func slowHead() throws {
        let channel = try self.makeChannel(head: .seconds(2))
        try channel.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHo"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        try channel.writeInbound(ByteBuffer(string: "st: t"))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        let written = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(
            String(buffer: written) == "HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        #expect(!channel.isActive)
    }

    @Test("An idle connection closes after the idle timeout, without writing anything")
    func idle() throws {
        let channel = try self.makeChannel(idle: .seconds(5))
        channel.embeddedEventLoop.advanceTime(by: .seconds(4))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == nil)
        #expect(!channel.isActive)
    }

    @Test("Parts are converted; the end of a response re-arms the idle timer")
    func responseEndRearmsIdle() throws {
        let channel = try self.makeChannel(idle: .seconds(5), head: .seconds(1))
        try channel.writeInbound(ByteBuffer(string: "GET /x HTTP/1.1\r\nHost: t\r\n\r\n"))
        guard case .head(let head) = try #require(try channel.readInbound(as: ConnectionInbound.self)) else {
            Issue.record("expected a head")
            return
        }
        #expect(head.uri == "/x")
        guard case .end = try #require(try channel.readInbound(as: ConnectionInbound.self)) else {
            Issue.record("expected an end")
            return
        }
        // Busy: the app takes its time, no timer runs.
        channel.embeddedEventLoop.advanceTime(by: .seconds(30))
        #expect(channel.isActive)
        try channel.writeOutbound(ConnectionOutbound.responseEnd(ByteBuffer(string: "resp")))
        #expect(try channel.readOutbound(as: ByteBuffer.self) == ByteBuffer(string: "resp"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(!channel.isActive)
    }

    @Test("After an Upgrade head the half-close is held back; after a plain head it passes")
    func halfCloseGate() throws {
        let upgrade = try self.makeChannel()
        try upgrade.writeInbound(
            ByteBuffer(string: "GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n"))
        upgrade.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        let gate = try upgrade.pipeline.syncOperations.handler(type: HalfCloseGate.self)
        #expect(gate.isHolding)

        let recorder = EventRecorder()
        let plain = try self.makeChannel()
        try plain.pipeline.syncOperations.addHandler(recorder)
        try plain.writeInbound(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: t\r\n\r\n"))
        plain.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(recorder.sawInputClosed)
    }
}

private final class EventRecorder: ChannelInboundHandler {
    typealias InboundIn = ConnectionInbound
    var sawInputClosed = false

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed { self.sawInputClosed = true }
    }
}
