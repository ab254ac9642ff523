import NIOCore
import Synchronization

/// A command to send and what its reply completes.
enum RedisRequest: Sendable {
    /// Any command; the promise gets its reply, whatever it is (an error reply fails it).
    case command(RESPCommand, EventLoopPromise<RESPValue>)
    /// `PUBLISH channel payload` (`SPUBLISH` when `sharded`), encoded without building a ``RESPCommand``; the reply
    /// is the number of receivers.
    case publish(channel: String, payload: ByteBuffer, sharded: Bool, reply: PublishReply)
    /// A command whose reply the server sends as a push (`SUNSUBSCRIBE` on a sharded subscriber connection, where
    /// the server also sends it unasked when a slot moves): written, and no reply awaited.
    case withoutReply(RESPCommand)
    /// A script call as its caller encoded it (`EVAL` with the source when `withSource`, after a `NOSCRIPT`); the
    /// promise completes when the script has run, whatever it returned (an error reply fails it).
    case script(RedisScriptCall, EventLoopPromise<Void>?, withSource: Bool)

    /// The bytes it takes on the wire, near enough: what the pending budget counts.
    var size: Int {
        switch self {
        case .command(let command, _), .withoutReply(let command): command.encodedSize
        case .publish(let channel, let payload, _, _): 48 + channel.utf8.count + payload.readableBytes
        case .script(let call, _, let withSource): call.size + (withSource ? call.script.source.utf8.count : 0)
        }
    }

    /// Appends the wire form.
    func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .command(let command, _), .withoutReply(let command):
            command.encode(into: &buffer)
        case .publish(let channel, let payload, let sharded, _):
            if sharded {
                buffer.writeStaticString("*3\r\n$8\r\nSPUBLISH\r\n")
            } else {
                buffer.writeStaticString("*3\r\n$7\r\nPUBLISH\r\n")
            }
            buffer.writeRESPHeader(UInt8(ascii: "$"), channel.utf8.count)
            buffer.writeString(channel)
            buffer.writeStaticString("\r\n")
            buffer.writeRESPHeader(UInt8(ascii: "$"), payload.readableBytes)
            buffer.writeImmutableBuffer(payload)
            buffer.writeStaticString("\r\n")
        case .script(let call, _, let withSource):
            call.encode(into: &buffer, withSource: withSource)
        }
    }

    /// Fails what the reply would have completed.
    func fail(_ error: any Error) {
        switch self {
        case .command(_, let promise): promise.fail(error)
        case .publish(_, _, _, let reply): reply.fail(error)
        case .script(_, let promise, _): promise?.fail(error)
        case .withoutReply: break
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
