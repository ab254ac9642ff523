import NIOConcurrencyHelpers
import NIOCore

/// A message framed once — and compressed once for the peers that negotiated permessage-deflate without server
/// context takeover — that can then be written to any number of sockets: the basis of fan-out.
///
/// ```swift
/// let prepared = PreparedMessage(.text("hello, everyone"))
/// for socket in room { try? socket.send(prepared) }
/// ```
///
/// Every socket gets the same `ByteBuffer` (reference-counted storage), so fan-out costs no copy or encoding per
/// recipient.
public final class PreparedMessage: Sendable {
    /// The message.
    public let message: WebSocketMessage
    /// The uncompressed frame.
    let plainFrame: ByteBuffer
    /// Compressed frames by compression settings, made on first use.
    private let compressedFrames = NIOLockedValueBox<[CompressionKey: ByteBuffer]>([:])

    struct CompressionKey: Hashable {
        var windowBits: Int
        var level: Int
    }

    /// Frames `message`.
    public init(_ message: WebSocketMessage) {
        self.message = message
        self.plainFrame = FrameWriter.frame(
            opcode: message.kind == .text ? .text : .binary,
            payload: message.data,
            allocator: ByteBufferAllocator()
        )
    }

    /// The frame to send to a peer with `deflate` settings.
    func frame(for deflate: NegotiatedDeflate?) -> ByteBuffer {
        // Sharing a compressed frame is only correct when the server does not keep context across messages.
        guard let deflate, deflate.serverNoContextTakeover, let bits = deflate.serverWindowBits,
            self.message.data.readableBytes >= deflate.minimumSizeToCompress
        else { return self.plainFrame }
        let key = CompressionKey(windowBits: bits, level: deflate.compressionLevel)
        if let cached = self.compressedFrames.withLockedValue({ $0[key] }) { return cached }
        guard let deflater = try? Deflater(windowBits: bits, level: deflate.compressionLevel),
            let compressed = try? deflater.compress(self.message.data, allocator: ByteBufferAllocator())
        else { return self.plainFrame }
        let frame = FrameWriter.frame(
            rsv1: true,
            opcode: self.message.kind == .text ? .text : .binary,
            payload: compressed,
            allocator: ByteBufferAllocator()
        )
        self.compressedFrames.withLockedValue { $0[key] = frame }
        return frame
    }
}

extension WebSocket {
    /// Sends a prepared message: the same encoded frame as every other recipient.
    ///
    /// - Throws: ``WebSocketError/closed``, as ``send(text:)``.
    public func send(_ prepared: PreparedMessage) throws {
        if self.eventLoop.inEventLoop {
            let handler = self.handler.value
            try handler.send(encodedFrame: prepared.frame(for: handler.deflate))
        } else {
            self.onLoop { handler in try? handler.send(encodedFrame: prepared.frame(for: handler.deflate)) }
        }
    }
}

extension WebSocket {
    /// Sends prepared messages in order with one flush: a fan-out that fell behind sends its backlog to each socket
    /// in one system call.
    ///
    /// - Throws: ``WebSocketError/closed``, as ``send(text:)``.
    public func send(_ batch: [PreparedMessage]) throws {
        if self.eventLoop.inEventLoop {
            let handler = self.handler.value
            try handler.send(encodedFrames: batch.lazy.map { $0.frame(for: handler.deflate) })
        } else {
            self.onLoop { handler in try? handler.send(encodedFrames: batch.lazy.map { $0.frame(for: handler.deflate) })
            }
        }
    }
}
