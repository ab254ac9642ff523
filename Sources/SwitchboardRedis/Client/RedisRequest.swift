import NIOCore
import Synchronization

/// A command to send and what its reply completes.
enum RedisRequest: Sendable {
    /// Any command; the promise gets its reply, whatever it is (an error reply fails it).
    case command(RESPCommand, EventLoopPromise<RESPValue>)
    /// `PUBLISH channel payload`, encoded without building a ``RESPCommand``; the reply is the number of receivers.
    case publish(channel: String, payload: ByteBuffer, reply: PublishReply)

    /// What a `PUBLISH`'s integer reply completes.
    enum PublishReply: Sendable {
        case none
        case receivers(EventLoopPromise<Int>)
        case done(EventLoopPromise<Void>)
    }

    /// The bytes it takes on the wire, near enough: what the pending budget counts.
    var size: Int {
        switch self {
        case .command(let command, _): command.encodedSize
        case .publish(let channel, let payload, _): 48 + channel.utf8.count + payload.readableBytes
        }
    }

    /// Appends the wire form.
    func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .command(let command, _):
            command.encode(into: &buffer)
        case .publish(let channel, let payload, _):
            buffer.writeStaticString("*3\r\n$7\r\nPUBLISH\r\n")
            buffer.writeRESPHeader(UInt8(ascii: "$"), channel.utf8.count)
            buffer.writeString(channel)
            buffer.writeStaticString("\r\n")
            buffer.writeRESPHeader(UInt8(ascii: "$"), payload.readableBytes)
            buffer.writeImmutableBuffer(payload)
            buffer.writeStaticString("\r\n")
        }
    }

    /// Fails what the reply would have completed.
    func fail(_ error: any Error) {
        switch self {
        case .command(_, let promise): promise.fail(error)
        case .publish(_, _, let reply): reply.fail(error)
        }
    }
}

extension RedisRequest.PublishReply {
    func fail(_ error: any Error) {
        switch self {
        case .none: break
        case .receivers(let promise): promise.fail(error)
        case .done(let promise): promise.fail(error)
        }
    }
}

/// Commands queued or waiting for their replies on one connection, against its budget
/// (``RedisConfiguration/maxPendingBytes``): counted in when queued, out when answered or failed.
final class RedisPendingBudget: Sendable {
    let bytes = Atomic<Int>(0)
    let commands = Atomic<Int>(0)
    private let maxBytes: Int

    init(maxBytes: Int) {
        self.maxBytes = maxBytes
    }

    /// Counts a request of `size` bytes in; `false` (nothing counted) when the budget is spent. A request larger
    /// than the whole budget still goes when it is alone, or it could never be sent.
    func admit(_ size: Int) -> Bool {
        let total = self.bytes.wrappingAdd(size, ordering: .relaxed).newValue
        guard total <= self.maxBytes || total == size else {
            self.bytes.wrappingSubtract(size, ordering: .relaxed)
            return false
        }
        self.commands.wrappingAdd(1, ordering: .relaxed)
        return true
    }

    /// Counts a request in whatever the budget: one that must go with another already admitted.
    func forceAdmit(_ size: Int) {
        self.bytes.wrappingAdd(size, ordering: .relaxed)
        self.commands.wrappingAdd(1, ordering: .relaxed)
    }

    /// Counts a request out: answered, failed, or never sent.
    func release(_ size: Int) {
        self.bytes.wrappingSubtract(size, ordering: .relaxed)
        self.commands.wrappingSubtract(1, ordering: .relaxed)
    }
}
