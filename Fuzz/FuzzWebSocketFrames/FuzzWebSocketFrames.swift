import Logging
import NIOCore
import NIOEmbedded

@testable import SwitchboardWebSocket

/// A client's bytes after the handshake, through the real handler: frames, fragments, control frames, masks, close
/// codes and reasons, UTF-8 across fragments, and permessage-deflate payloads (negotiated when the first byte is
/// odd), delivered in reads of the sizes the second byte picks. Messages are echoed when bit 3 of the first byte is set,
/// so compression runs too.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWebSocketFrames(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let input = UnsafeBufferPointer(start: start, count: count)
    guard input.count >= 2 else { return 0 }
    let deflate =
        input[0] & 1 == 1
        ? NegotiatedDeflate(
            serverNoContextTakeover: input[0] & 2 == 2, clientNoContextTakeover: input[0] & 4 == 4,
            serverWindowBits: 9 + Int(input[0] >> 4) % 7, minimumSizeToCompress: 0, compressionLevel: 6,
            responseHeader: "permessage-deflate")
        : nil
    let readSize = max(1, Int(input[1]))
    let channel = EmbeddedChannel()
    // Small limits, so that the fuzzer reaches them (1009) without megabytes of input.
    let configuration = WebSocketConfiguration(maxFrameSize: 2048, maxMessageSize: 8192, pingInterval: nil)
    let logger = Logger(label: "fuzz", factory: { _ in SwiftLogNoOpLogHandler() })
    let handler = WebSocketHandler(configuration: configuration, deflate: deflate, logger: logger)
    let socket = WebSocket(
        handler: handler, eventLoop: channel.eventLoop, subprotocol: nil, logger: logger, withInbox: false)
    handler.socket = socket
    // Echoing (compression and framing on the way out) costs a compressor per input: one input in eight does it, so
    // the parser, the fuzzer's real target, gets most of the executions.
    if input[0] & 8 == 8 { socket.onMessage { socket, message in try? socket.send(message) } }
    do {
        // Active, as a hijacked connection is: the handler stops reading once the channel is not.
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        try channel.pipeline.syncOperations.addHandler(handler)
    } catch {
        fatalError("cannot set up the channel: \(error)")
    }
    var offset = 2
    while offset < input.count, channel.isActive {
        let end = min(input.count, offset + readSize)
        try? channel.writeInbound(ByteBuffer(bytes: input[offset..<end]))
        while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
        offset = end
    }
    channel.embeddedEventLoop.run()
    _ = try? channel.finish(acceptAlreadyClosed: true)
    return 0
}
