// The floor of a WebSocket echo on SwiftNIO, for measurements only (never serve anything with it): the handshake,
// then each frame unmasked and echoed; no validation, no UTF-8 check, no limits, no close handshake. It answers
// "how cheap can a 64 B echo on NIO be on this machine", which is what bounds Switchboard's echo CPU per message:
//
//     swift build -c release --package-path scripts/nio-floor
//     ../shared/tools/perf/compare.sh -r 3 -w echo64 "cmd:$PWD/scripts/nio-floor/.build/release/nio-floor {PORT}"
import Foundation
import NIOCore
import NIOPosix

func sha1(_ message: [UInt8]) -> [UInt8] {
    var h: [UInt32] = [0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0]
    var m = message
    let ml = UInt64(message.count) * 8
    m.append(0x80)
    while m.count % 64 != 56 { m.append(0) }
    for i in (0..<8).reversed() { m.append(UInt8((ml >> (UInt64(i) * 8)) & 0xff)) }
    for chunk in stride(from: 0, to: m.count, by: 64) {
        var w = [UInt32](repeating: 0, count: 80)
        for i in 0..<16 {
            w[i] = UInt32(m[chunk + 4*i]) << 24 | UInt32(m[chunk + 4*i + 1]) << 16 | UInt32(m[chunk + 4*i + 2]) << 8 | UInt32(m[chunk + 4*i + 3])
        }
        for i in 16..<80 { let x = w[i-3] ^ w[i-8] ^ w[i-14] ^ w[i-16]; w[i] = (x << 1) | (x >> 31) }
        var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
        for i in 0..<80 {
            let (f, k): (UInt32, UInt32)
            switch i {
            case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A827999)
            case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9EBA1)
            case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1BBCDC)
            default: (f, k) = (b ^ c ^ d, 0xCA62C1D6)
            }
            let t = ((a << 5) | (a >> 27)) &+ f &+ e &+ k &+ w[i]
            e = d; d = c; c = (b << 30) | (b >> 2); b = a; a = t
        }
        h[0] &+= a; h[1] &+= b; h[2] &+= c; h[3] &+= d; h[4] &+= e
    }
    return h.flatMap { v in (0..<4).map { UInt8((v >> (24 - 8 * UInt32($0))) & 0xff) } }
}

final class FloorEcho: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    var upgraded = false
    var pending = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = self.unwrapInboundIn(data)
        if self.pending.readableBytes > 0 { self.pending.writeBuffer(&bytes); bytes = self.pending; self.pending = ByteBuffer() }
        if !self.upgraded {
            let text = String(buffer: bytes)
            guard let end = text.range(of: "\r\n\r\n") else { self.pending = bytes; return }
            let key = text.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("sec-websocket-key:") }!
                .split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces)
            let accept = Data(sha1(Array((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").utf8))).base64EncodedString()
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer(string:
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: \(accept)\r\n\r\n")), promise: nil)
            self.upgraded = true
            bytes.moveReaderIndex(forwardBy: text[..<end.upperBound].utf8.count)
        }
        var wrote = false
        while bytes.readableBytes >= 2 {
            let b0 = bytes.getInteger(at: bytes.readerIndex, as: UInt8.self)!
            let b1 = bytes.getInteger(at: bytes.readerIndex + 1, as: UInt8.self)!
            var len = Int(b1 & 0x7f)
            var headerLength = 2
            if len == 126 { guard bytes.readableBytes >= 4 else { break }; len = Int(bytes.getInteger(at: bytes.readerIndex + 2, as: UInt16.self)!); headerLength = 4 }
            else if len == 127 { guard bytes.readableBytes >= 10 else { break }; len = Int(bytes.getInteger(at: bytes.readerIndex + 2, as: UInt64.self)!); headerLength = 10 }
            guard bytes.readableBytes >= headerLength + 4 + len else { break }
            let mask = bytes.getBytes(at: bytes.readerIndex + headerLength, length: 4)!
            let start = bytes.readerIndex + headerLength + 4
            if b0 & 0x0f == 0x8 { context.close(promise: nil); return }
            var out = context.channel.allocator.buffer(capacity: len + 4)
            out.writeInteger(0x80 | (b0 & 0x0f))
            if len < 126 { out.writeInteger(UInt8(len)) } else { out.writeInteger(UInt8(126)); out.writeInteger(UInt16(len)) }
            _ = bytes.withUnsafeReadableBytes { raw in
                out.writeWithUnsafeMutableBytes(minimumWritableBytes: len) { dst in
                    for i in 0..<len { dst[i] = raw[start - bytes.readerIndex + i] ^ mask[i & 3] }
                    return len
                }
            }
            bytes.moveReaderIndex(to: start + len)
            context.write(self.wrapOutboundOut(out), promise: nil)
            wrote = true
        }
        if wrote { context.flush() }
        if bytes.readableBytes > 0 { self.pending = bytes }
    }
}

let port = Int(CommandLine.arguments.dropFirst().last ?? "9400") ?? 9400
let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(FloorEcho()) } }
    .bind(host: "127.0.0.1", port: port).wait()
print("floor echo on \(port)")
try channel.closeFuture.wait()
