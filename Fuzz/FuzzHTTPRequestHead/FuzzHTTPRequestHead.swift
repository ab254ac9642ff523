import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Switchboard
import SwitchboardWebSocket

@testable import SwitchboardServer

/// A request head as a client sends it, down the server's path: NIO's parser with the server's limits, our head
/// checks (method, version, lengths, transfer codings, header count), the target's path and query, the forwarded
/// headers of a trusted proxy, the router's patterns and the WebSocket handshake's checks (key, version,
/// subprotocols, permessage-deflate offers).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTPRequestHead(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = UnsafeBufferPointer(start: start, count: count)
    var limits = NIOHTTPDecoderLimitConfiguration()
    limits.maxHeaderListSize = 16 * 1024
    limits.maxHeaderFieldSize = 16 * 1024
    limits.maxHeaderFieldCount = 101
    let channel = EmbeddedChannel(
        handler: ByteToMessageHandler(
            HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes, limitConfiguration: limits)))
    _ = try? channel.writeInbound(ByteBuffer(bytes: input))
    let parser = RequestHeadParser(maxHeaderCount: 100, maxBodySize: 1024 * 1024)
    while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
        guard case .head(let head) = part, let parsed = try? parser.parse(head) else { continue }
        let request = Request(
            method: parsed.method, target: head.uri, version: parsed.version, headers: parsed.headers,
            remoteAddress: try? SocketAddress(ipAddress: "127.0.0.1", port: 1))
        _ = (request.path, request.query)
        _ = ForwardedHeaders(
            peer: request.remoteAddress, headers: request.headers, trusted: trustedProxies, isTLS: false)
        _ = router.pattern(matching: request)
        let response = WebSocket.upgrade(
            request, configuration: WebSocketConfiguration(subprotocols: ["switchboard.chat.v1"])
        ) { (_: WebSocket) in }
        _ = response.status
    }
    _ = try? channel.finish(acceptAlreadyClosed: true)
    return 0
}

private let trustedProxies = [IPAddressRange("127.0.0.0/8")!, IPAddressRange("fd00::/8")!]

private let router: Router = {
    var router = Router()
    for pattern in ["/", "/chat", "/subscribe/:channel", "/publish/:channel", "/files/*", "/a/:b/c/:d"] {
        router.get(pattern) { _ in Response() }
    }
    return router
}()
