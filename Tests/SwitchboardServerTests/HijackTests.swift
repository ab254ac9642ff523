import HTTPTypes
import NIOCore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Switchboard
import SwitchboardLocks
import SwitchboardTesting
import Testing

@testable import SwitchboardServer

/// An app that upgrades `GET /upgrade` with a partial hijack and echoes bytes until the client closes its
/// side, then reports how many bytes it saw; `/plain` answers normally.
private let echoUpgradeApp = AnyApplication { request in
    switch request.path {
    case "/upgrade":
        return Response(status: .switchingProtocols, headers: [.upgrade: "echo", .connection: "Upgrade"]) { io in
            var total = 0
            while let bytes = try await io.read() {
                total += bytes.readableBytes
                try await io.write(bytes)
            }
            try await io.write("|eof after \(total)")
            try await io.close()
        }
    default:
        return Response(body: .init(string: "plain \(request.path)"))
    }
}

@Suite("Hijack")
struct HijackTests {
    @Test("Bytes pipelined behind an Upgrade head, in the same packet, reach the hijacker in order")
    func inlinePayloadAfterUpgradeHead() async throws {
        try await withServer(echoUpgradeApp) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send(
                    "GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nHELLO-INLINE"
                )
                let head = try await client.read(through: "\r\n\r\n")
                #expect(head.hasPrefix("HTTP/1.1 101 Switching Protocols\r\n"))
                #expect(!head.contains("Content-Length"))
                #expect(!head.contains("Transfer-Encoding"))
                #expect(try await client.read(count: 12) == "HELLO-INLINE")
                try await client.send("MORE")
                #expect(try await client.read(count: 4) == "MORE")
                client.closeOutput()
                #expect(try await client.readToEnd() == "|eof after 16")
            }
        }
    }

    @Test("Pipelined plain requests are answered in order, then the upgrade on the same connection hijacks")
    func pipelinedRequestsThenHijack() async throws {
        try await withServer(echoUpgradeApp) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send(
                    "GET /plain/1 HTTP/1.1\r\nHost: t\r\n\r\n"
                        + "GET /plain/2 HTTP/1.1\r\nHost: t\r\n\r\n"
                        + "GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nxyz"
                )
                let first = try await client.readResponse()
                let second = try await client.readResponse()
                #expect(first.body == "plain /plain/1")
                #expect(second.body == "plain /plain/2")
                let head = try await client.read(through: "\r\n\r\n")
                #expect(head.hasPrefix("HTTP/1.1 101 "))
                #expect(try await client.read(count: 3) == "xyz")
                client.closeOutput()
                #expect(try await client.readToEnd() == "|eof after 3")
            }
        }
    }

    @Test("Half-close during a hijack: the hijacker sees end of input and can still write")
    func halfCloseDuringHijack() async throws {
        try await withServer(echoUpgradeApp) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send(
                    "GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nab")
                client.closeOutput()
                let all = try await client.readToEnd()
                #expect(all.hasPrefix("HTTP/1.1 101 "))
                #expect(all.hasSuffix("\r\n\r\nab|eof after 2"))
            }
        }
    }

    @Test("Partial hijack: exactly the app's status and headers plus Date and Server, then the app's bytes")
    func partialHijackBytesOnTheWire() async throws {
        let app = AnyApplication { _ in
            Response(status: .ok, headers: [.contentLength: "5", .contentType: "text/plain"]) { io in
                try await io.write("hello")
                try await io.close()
            }
        }
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                let all = try await client.readToEnd()
                let lines = all.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
                #expect(lines[0] == "HTTP/1.1 200 OK")
                #expect(lines[1] == "Content-Length: 5")
                #expect(lines[2] == "Content-Type: text/plain")
                #expect(lines[3].hasPrefix("Date: ") && lines[3].hasSuffix(" GMT"))
                #expect(lines[4] == "Server: switchboard")
                #expect(lines[5] == "")
                #expect(lines[6] == "hello")
                #expect(lines.count == 7)
            }
        }
    }

    @Test("Installed handlers receive the bytes pipelined behind the request head")
    func installedHandlersGetInlineBytes() async throws {
        let app = AnyApplication { _ in
            Response(status: .switchingProtocols, headers: [.upgrade: "shout", .connection: "Upgrade"]) { io in
                try await io.installHandlers { [UppercaseEchoHandler()] }
                // The protocol runs in the handler; the hijacker's byte view is no longer usable.
                await #expect(throws: HijackError.handlersInstalled) { _ = try await io.read() }
            }
        }
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nhi")
                _ = try await client.read(through: "\r\n\r\n")
                #expect(try await client.read(count: 2) == "HI")
                try await client.send("there")
                #expect(try await client.read(count: 5) == "THERE")
            }
        }
    }

    @Test("Once the hijacker returns, its relay and the bridge leave the pipeline; the installed protocol goes on")
    func relayRetiredAfterHandOver() async throws {
        let hijacked = Locked<(any Channel)?>(nil)
        let app = AnyApplication { _ in
            Response(status: .switchingProtocols, headers: [.upgrade: "shout", .connection: "Upgrade"]) { io in
                try await io.installHandlers { [UppercaseEchoHandler()] }
                hijacked.withLock { $0 = io.channel }
            }
        }
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET / HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: shout\r\n\r\nhi")
                _ = try await client.read(through: "\r\n\r\n")
                #expect(try await client.read(count: 2) == "HI")
                // The handlers answer as soon as they are in, possibly before the hijacker resumes and records them.
                #expect(await eventually { hijacked.withLock { $0 } != nil })
                let channel = try #require(hijacked.withLock { $0 })
                var left: [String] = []
                for _ in 0..<200 {
                    left = try await channel.eventLoop.submit {
                        let pipeline = channel.pipeline.syncOperations
                        return [
                            (try? pipeline.handler(type: HijackRelayHandler.self)).map { _ in "relay" },
                            (try? pipeline.handler(type: ConnectionBridgeHandler.self)).map { _ in "bridge" },
                            (try? pipeline.handler(type: HalfCloseGate.self)).map { _ in "gate" },
                        ].compactMap { $0 }
                    }.value()
                    if left.isEmpty { break }
                    try await Task.sleep(for: .milliseconds(5))
                }
                #expect(left == [], "only the protocol's handlers remain")
                try await client.send("there")
                #expect(try await client.read(count: 5) == "THERE")
            }
        }
    }

    @Test("Full hijack of a POST: the unread rest of the body comes first in the byte view")
    func fullHijackDeliversUnreadBody() async throws {
        let app = AnyApplication { request in
            let io = try await request.hijack()
            var received = ""
            while received.count < 10, let bytes = try await io.read() {
                received += String(buffer: bytes)
            }
            try await io.write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n\(received)")
            try await io.close()
            return Response(status: .internalServerError)
        }
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234")
                try await client.send("56789")
                #expect(try await client.readToEnd() == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n0123456789")
            }
        }
    }

    @Test("An app that declines an upgrade answers normally, and the connection closes (the parser has stopped)")
    func declinedUpgradeCloses() async throws {
        try await withServer(echoUpgradeApp) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /plain HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.body == "plain /plain")
                #expect(response.header("Connection") == "close")
                #expect(try await client.readToEnd() == "")
            }
        }
    }

    @Test("A hijacked connection is never timed out by the server")
    func hijackedConnectionIsNotTimedOut() async throws {
        // The idle timeout also runs between the connect and the first request: it must exceed how late a loaded
        // test machine may send that request, and the sleep must exceed it well.
        let configuration = testConfiguration(idleTimeout: .seconds(1), headReadTimeout: .seconds(1))
        try await withServer(echoUpgradeApp, configuration: configuration) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send(
                    "GET /upgrade HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
                let head = try await client.read(through: "\r\n\r\n")
                #expect(head.hasPrefix("HTTP/1.1 101 "))
                try await Task.sleep(for: .milliseconds(2500))
                try await client.send("still here")
                #expect(try await client.read(count: 10) == "still here")
            }
        }
    }

    @Test("A 1xx status without a hijack is not sent: the server answers 500")
    func interimStatusWithoutHijack() async throws {
        try await withServer(AnyApplication { _ in Response(status: .switchingProtocols) }) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.readResponse().status == 500)
            }
        }
    }

    @Test("Hijack state: hijackable once while answering, not after, not twice")
    func hijackabilityRules() async throws {
        let app = AnyApplication { request in
            #expect(request.isHijackable)
            #expect(!request.isHijacked)
            let io = try await request.hijack()
            #expect(request.isHijacked)
            #expect(!request.isHijackable)
            await #expect(throws: HijackError.alreadyHijacked) { _ = try await request.hijack() }
            try await io.write("done")
            try await io.close()
            return Response()
        }
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.readToEnd() == "done")
            }
        }
        let synthetic = Request(method: .get, target: "/")
        #expect(!synthetic.isHijackable)
        await #expect(throws: HijackError.notSupported) { _ = try await synthetic.hijack() }
    }

    @Test("A hijacker observes graceful shutdown and the server waits for it")
    func hijackerObservesGracefulShutdown() async throws {
        let app = AnyApplication { request in
            let io = try await request.hijack()
            try await io.write("hello;")
            try? await gracefulShutdown()
            try await io.write("server is shutting down")
            try await io.close()
            return Response()
        }
        try await withGracefulShutdownServer(app) { port, triggerShutdown in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.read(count: 6) == "hello;")
                triggerShutdown()
                #expect(try await client.readToEnd() == "server is shutting down")
            }
        }
    }
}

/// Echoes bytes in upper case: a stand-in for a protocol handler such as WebSocket's.
private final class UppercaseEchoHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let text = String(buffer: self.unwrapInboundIn(data)).uppercased()
        context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string: text)), promise: nil)
    }
}
