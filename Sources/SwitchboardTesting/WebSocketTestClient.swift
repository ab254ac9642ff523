public import NIOCore
import Testing

/// A frame as a test client sees it.
public struct TestFrame: Equatable, Sendable {
    public var fin = true
    public var rsv1 = false
    public var opcode: UInt8
    public var payload: ByteBuffer

    public init(fin: Bool = true, rsv1: Bool = false, opcode: UInt8, payload: ByteBuffer) {
        self.fin = fin
        self.rsv1 = rsv1
        self.opcode = opcode
        self.payload = payload
    }

    public var text: String { String(buffer: self.payload) }
    public var closeCode: UInt16? { self.payload.getInteger(at: self.payload.readerIndex, as: UInt16.self) }
}

/// A masked client frame.
public func clientFrame(
    _ opcode: UInt8,
    _ payload: [UInt8],
    fin: Bool = true,
    rsv1: Bool = false,
    masked: Bool = true,
    key: [UInt8] = [0x12, 0x34, 0x56, 0x78]
) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.writeInteger((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode, as: UInt8.self)
    let maskBit: UInt8 = masked ? 0x80 : 0
    if payload.count < 126 {
        buffer.writeInteger(maskBit | UInt8(payload.count))
    } else if payload.count <= 0xFFFF {
        buffer.writeInteger(maskBit | 126)
        buffer.writeInteger(UInt16(payload.count))
    } else {
        buffer.writeInteger(maskBit | 127)
        buffer.writeInteger(UInt64(payload.count))
    }
    if masked {
        buffer.writeBytes(key)
        // Masked in place through a raw pointer: a debug build spends seconds of a flood test in a generic
        // `enumerated().map`, and the whole suite shares two cores.
        let start = buffer.writerIndex - buffer.readerIndex
        buffer.writeBytes(payload)
        let mask = (key[0], key[1], key[2], key[3])
        buffer.withUnsafeMutableReadableBytes { bytes in
            var index = start
            var phase = 0
            while index < bytes.count {
                bytes[index] ^= phase == 0 ? mask.0 : phase == 1 ? mask.1 : phase == 2 ? mask.2 : mask.3
                phase = (phase + 1) & 3
                index += 1
            }
        }
    } else {
        buffer.writeBytes(payload)
    }
    return buffer
}

/// A masked client frame with a UTF-8 payload.
public func clientFrame(_ opcode: UInt8, text: String, fin: Bool = true) -> ByteBuffer {
    clientFrame(opcode, Array(text.utf8), fin: fin)
}

/// A close frame's payload: the code, then the reason.
public func closePayload(_ code: UInt16, _ reason: [UInt8] = []) -> [UInt8] {
    [UInt8(code >> 8), UInt8(code & 0xFF)] + reason
}

extension RawClient {
    /// Sends an opening handshake for `path` (with `Host: t` unless `headers` has a `Host`); returns the response
    /// head.
    public func handshake(path: String = "/ws", headers: [String] = []) async throws -> TestResponse {
        let hasHost = headers.contains { $0.lowercased().hasPrefix("host:") }
        var request =
            "GET \(path) HTTP/1.1\r\n\(hasHost ? "" : "Host: t\r\n")Upgrade: websocket\r\nConnection: Upgrade\r\n"
        request += "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        for header in headers { request += header + "\r\n" }
        try await self.send(request + "\r\n")
        let head = try await self.read(through: "\r\n\r\n")
        return try #require(TestResponse(head: head), "no response to the handshake")
    }

    /// Reads one server frame, or `nil` at end of stream.
    public func readFrame() async throws -> TestFrame? {
        var header = try await self.readBytes(count: 2)
        guard header.readableBytes == 2 else { return nil }
        let first = header.readInteger(as: UInt8.self)!
        let second = header.readInteger(as: UInt8.self)!
        #expect(second & 0x80 == 0, "server frames must not be masked")
        var length = Int(second & 0x7F)
        if length == 126 {
            var extended = try await self.readBytes(count: 2)
            length = Int(extended.readInteger(as: UInt16.self)!)
        } else if length == 127 {
            var extended = try await self.readBytes(count: 8)
            length = Int(extended.readInteger(as: UInt64.self)!)
        }
        let payload = try await self.readBytes(count: length)
        guard payload.readableBytes == length else { return nil }
        return TestFrame(fin: first & 0x80 != 0, rsv1: first & 0x40 != 0, opcode: first & 0x0F, payload: payload)
    }
}
