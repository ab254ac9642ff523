import HTTPTypes
import NIOCore
import ServiceLifecycle
import Switchboard
import SwitchboardDemos
import SwitchboardServer
import SwitchboardTesting
import Synchronization
import Testing

@testable import SwitchboardWebSocket

/// Echo at `/ws` with small limits; `/ws-async` echoes with the async API.
private func echoApp(_ configuration: WebSocketConfiguration = .init(maxFrameSize: 4096, maxMessageSize: 8192))
    -> some Application
{
    var router = Router()
    router.get("/ws") { request in
        WebSocket.upgrade(request, configuration: configuration) { socket in
            socket.onMessage { socket, message in try? socket.send(message) }
        }
    }
    router.get("/ws-async") { request in
        WebSocket.upgrade(request, configuration: configuration) { socket in
            for try await message in socket.messages {
                try socket.send(.text("async: " + message.text))
            }
        }
    }
    router.get("/plain") { _ in Response(body: .init(string: "plain")) }
    return router
}

@Suite("WebSocket over a live server")
struct WebSocketLiveTests {
    @Test("Handshake: 101 with the RFC 6455 accept key; echo of text, binary and a fragmented message")
    func echo() async throws {
        try await withServer(echoApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                let response = try await client.handshake()
                #expect(response.status == 101)
                #expect(response.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
                #expect(response.header("Upgrade") == "websocket")
                #expect(response.header("Sec-WebSocket-Protocol") == nil)
                try await client.send(clientFrame(0x1, text: "hello"))
                #expect(try await client.readFrame() == TestFrame(opcode: 0x1, payload: ByteBuffer(string: "hello")))
                try await client.send(clientFrame(0x2, [0, 1, 2, 255]))
                #expect(
                    try await client.readFrame() == TestFrame(opcode: 0x2, payload: ByteBuffer(bytes: [0, 1, 2, 255])))
                // "κόσμε" split inside a code point, with a ping between the fragments.
                let bytes = Array("κόσμε".utf8)
                try await client.send(clientFrame(0x1, Array(bytes[..<3]), fin: false))
                try await client.send(clientFrame(0x9, Array("p".utf8)))
                try await client.send(clientFrame(0x0, Array(bytes[3...])))
                #expect(try await client.readFrame() == TestFrame(opcode: 0xA, payload: ByteBuffer(string: "p")))
                #expect(try await client.readFrame()?.text == "κόσμε")
                try await client.send(clientFrame(0x8, closePayload(1000)))
                #expect(try await client.readFrame()?.closeCode == 1000)
                #expect(try await client.readToEnd() == "", "the server closes TCP after the close handshake")
            }
        }
    }

    @Test("A WebSocket on the second request of a keep-alive connection")
    func upgradeOnSecondRequest() async throws {
        try await withServer(echoApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /plain HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.readResponse().body == "plain")
                #expect(try await client.handshake().status == 101)
                try await client.send(clientFrame(0x1, text: "second"))
                #expect(try await client.readFrame()?.text == "second")
            }
        }
    }

    enum BadHandshake: String, CaseIterable, CustomTestStringConvertible {
        case post, http10, noUpgrade, upgradeOther, connectionWithoutUpgrade, shortKey, noKey, version8, twoVersions
        var testDescription: String { self.rawValue }

        var request: String {
            let key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            let base = "Host: t\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n"
            return switch self {
            case .post: "POST /ws HTTP/1.1\r\n\(base)\(key)Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"
            case .http10: "GET /ws HTTP/1.0\r\n\(base)\(key)Sec-WebSocket-Version: 13\r\n\r\n"
            case .noUpgrade:
                "GET /ws HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\n\(key)Sec-WebSocket-Version: 13\r\n\r\n"
            case .upgradeOther:
                "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\(key)Sec-WebSocket-Version: 13\r\n\r\n"
            case .connectionWithoutUpgrade:
                "GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n\(key)Sec-WebSocket-Version: 13\r\n\r\n"
            case .shortKey:
                "GET /ws HTTP/1.1\r\n\(base)Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n"
            case .noKey: "GET /ws HTTP/1.1\r\n\(base)Sec-WebSocket-Version: 13\r\n\r\n"
            case .version8: "GET /ws HTTP/1.1\r\n\(base)\(key)Sec-WebSocket-Version: 8\r\n\r\n"
            case .twoVersions:
                "GET /ws HTTP/1.1\r\n\(base)\(key)Sec-WebSocket-Version: 13\r\nSec-WebSocket-Version: 8\r\n\r\n"
            }
        }

        var status: Int {
            switch self {
            case .post: 405  // the router only routes GET /ws
            case .version8, .twoVersions: 426
            default: 400
            }
        }
    }

    @Test("A bad handshake is an ordinary error response, never a hijack", arguments: BadHandshake.allCases)
    func badHandshakes(bad: BadHandshake) async throws {
        try await withServer(echoApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send(bad.request)
                let response = try await client.readResponse()
                #expect(response.status == bad.status)
                if bad.status == 426 { #expect(response.header("Sec-WebSocket-Version") == "13") }
                #expect(response.header("Upgrade") == nil)
            }
        }
    }

    @Test("Subprotocol: the server's first choice among the client's offers, or none; origins: an allowlist")
    func subprotocolAndOrigin() async throws {
        let configuration = WebSocketConfiguration(
            subprotocols: ["chat.v2", "chat.v1"], allowedOrigins: ["https://ok.example"])
        try await withServer(echoApp(configuration)) { _, port in
            try await RawClient.withConnection(port: port) { client in
                let response = try await client.handshake(headers: [
                    "Sec-WebSocket-Protocol: chat.v1, chat.v2", "Origin: https://ok.example",
                ])
                #expect(response.status == 101)
                #expect(response.header("Sec-WebSocket-Protocol") == "chat.v2")
            }
            try await RawClient.withConnection(port: port) { client in
                let response = try await client.handshake(headers: [
                    "Sec-WebSocket-Protocol: other", "Origin: https://ok.example",
                ])
                #expect(response.status == 101)
                #expect(
                    response.header("Sec-WebSocket-Protocol") == nil, "no subprotocol header rather than an empty one")
            }
            try await RawClient.withConnection(port: port) { client in
                let refused = try await client.handshake(headers: ["Origin: https://evil.example"])
                #expect(refused.status == 403)
            }
            try await RawClient.withConnection(port: port) { client in
                let noOrigin = try await client.handshake()
                #expect(noOrigin.status == 101, "no Origin: not a browser, so not judged by the allowlist")
            }
        }
        let strict = WebSocketConfiguration(allowedOrigins: ["https://ok.example"], requiresOrigin: true)
        try await withServer(echoApp(strict)) { _, port in
            let missing = try await RawClient.withConnection(port: port) { try await $0.handshake().status }
            #expect(missing == 403, "an Origin is required")
            let allowed = try await RawClient.withConnection(port: port) { client in
                try await client.handshake(headers: ["Origin: https://ok.example"]).status
            }
            #expect(allowed == 101)
        }
    }

    @Test(
        "Close codes: valid ones are echoed, reserved ones get 1002, a bad reason 1007",
        arguments: [
            (closePayload(1000), UInt16(1000)), (closePayload(1001), 1001), (closePayload(1003), 1003),
            (closePayload(1007), 1007), (closePayload(1011), 1011), (closePayload(3000), 3000),
            (closePayload(4999), 4999),
            (closePayload(0), 1002), (closePayload(999), 1002), (closePayload(1004), 1002), (closePayload(1005), 1002),
            (closePayload(1006), 1002), (closePayload(1015), 1002), (closePayload(1016), 1002),
            (closePayload(2000), 1002),
            (closePayload(5000), 1002), ([0x03], 1002), (closePayload(1000, [0xFF, 0xFE]), 1007),
            (closePayload(1000, Array("bye".utf8)), 1000),
        ] as [([UInt8], UInt16)]
    )
    func closeCodes(payload: [UInt8], expected: UInt16) async throws {
        try await withServer(echoApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake()
                try await client.send(clientFrame(0x8, payload))
                let frame = try await client.readFrame()
                #expect(frame?.opcode == 0x8)
                #expect(frame?.closeCode == expected)
                #expect(try await client.readToEnd() == "")
            }
        }
    }

    @Test("An empty close frame is answered with an empty close frame")
    func emptyClose() async throws {
        try await withServer(echoApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake()
                try await client.send(clientFrame(0x8, []))
                #expect(try await client.readFrame() == TestFrame(opcode: 0x8, payload: ByteBuffer()))
            }
        }
    }

    @Test("Invalid UTF-8 in the second fragment fails with 1007 before the third is sent")
    func utf8FailsFast() async throws {
        try await withServer(echoApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake()
                try await client.send(clientFrame(0x1, Array("κόσ".utf8), fin: false))
                try await client.send(clientFrame(0x0, [0xED, 0xA0, 0x80], fin: false))
                #expect(try await client.readFrame()?.closeCode == 1007)
            }
        }
    }

    @Test("Limits: a frame or message over the maximum closes with 1009")
    func limits() async throws {
        try await withServer(echoApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake()
                try await client.send(clientFrame(0x2, Array(repeating: 1, count: 5000)))
                #expect(try await client.readFrame()?.closeCode == 1009)
            }
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake()
                // The server may close before the last fragment is out; the client's late send may then fail.
                for i in 0..<3 {
                    try? await client.send(
                        clientFrame(i == 0 ? 0x2 : 0x0, Array(repeating: 1, count: 4000), fin: false))
                }
                #expect(try await client.readFrame()?.closeCode == 1009)
            }
        }
    }

    @Test("permessage-deflate live: a compressed message is inflated and echoed compressed; a zip bomb gets 1009")
    func deflateLive() async throws {
        try await withServer(echoApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                let response = try await client.handshake(headers: ["Sec-WebSocket-Extensions: permessage-deflate"])
                #expect(response.header("Sec-WebSocket-Extensions") == "permessage-deflate; server_no_context_takeover")
                let text = String(repeating: "compress me ", count: 100)
                let deflater = try Deflater(windowBits: 15, level: 6)
                let compressed = try deflater.compress(ByteBuffer(string: text), allocator: ByteBufferAllocator())
                try await client.send(clientFrame(0x1, Array(compressed.readableBytesView), rsv1: true))
                let frame = try #require(try await client.readFrame())
                #expect(frame.rsv1)
                var payload = frame.payload
                payload.writeBytes([0x00, 0x00, 0xFF, 0xFF])
                var inflated = ByteBuffer()
                #expect(try Inflater().inflate(payload, into: &inflated, limit: 1 << 20))
                #expect(String(buffer: inflated) == text)

                let bomb = try Deflater(windowBits: 15, level: 9).compress(
                    ByteBuffer(repeating: 0x41, count: 1 << 20), allocator: ByteBufferAllocator())
                try await client.send(clientFrame(0x1, Array(bomb.readableBytesView), rsv1: true))
                #expect(try await client.readFrame()?.closeCode == 1009)
            }
        }
    }

    @Test("RSV1 on a continuation frame is a protocol error")
    func rsv1OnContinuation() async throws {
        try await withServer(echoApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake(headers: ["Sec-WebSocket-Extensions: permessage-deflate"])
                try await client.send(clientFrame(0x1, Array("a".utf8), fin: false))
                try await client.send(clientFrame(0x0, Array("b".utf8), rsv1: true))
                #expect(try await client.readFrame()?.closeCode == 1002)
            }
        }
    }

    @Test("The async API: for try await over messages, async send")
    func asyncAPI() async throws {
        try await withServer(echoApp()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                _ = try await client.handshake(path: "/ws-async")
                for i in 0..<40 { try await client.send(clientFrame(0x1, text: "m\(i)")) }
                for i in 0..<40 { #expect(try await client.readFrame()?.text == "async: m\(i)") }
            }
        }
    }
}
