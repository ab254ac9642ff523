public import NIOCore
import SwitchboardLocks

/// Where each command goes: to one Redis (a ``RedisClient`` routes everything to itself), to one of several
/// independent shards (``RedisShards``), or to the node of a Redis Cluster that owns the key's slot
/// (``RedisClusterClient``). Every command names the key it is routed by; a script, its first key (all of a
/// script's keys share a hash tag, so a slot).
public protocol RedisRouter: Sendable {
    /// Sends `command`, routed by `key`; fails at once while that key's Redis is unreachable.
    func sendNow(_ command: RESPCommand, routedBy key: String) -> EventLoopFuture<RESPValue>

    /// Runs `script` (`EVALSHA`, loading it first where needed), routed by its first key.
    func evaluateNow(_ script: RedisScript, keys: [ByteBuffer], arguments: [ByteBuffer]) -> EventLoopFuture<RESPValue>

    /// Runs a script call as its caller encoded it, routed by its first key: the hot path (no future per call).
    /// `completion` completes once the script has run, whatever it returned, or fails.
    func evaluateNow(_ call: RedisScriptCall, completion: EventLoopPromise<Void>?)

    /// Publishes `payload` to `channel` on the channel's Redis (`SPUBLISH` in a cluster): `reply` gets the number of
    /// receivers, or the failure.
    func publishNow(_ payload: ByteBuffer, to channel: String, reply: PublishReply)

    /// Every Redis this router sends to now (a cluster's primaries): for what each of them must be asked.
    var clients: [RedisClient] { get }

    /// Whether channels are sharded (`SPUBLISH`, `SSUBSCRIBE`: Redis Cluster): scripts that publish must then
    /// use ``RedisScript/sharded``.
    var publishesSharded: Bool { get }
}

/// What a `PUBLISH`'s reply completes.
public enum PublishReply: Sendable {
    /// Nothing: a publisher that does not wait (its failures are counted by the client).
    case none
    /// The number of subscriber connections that received the message.
    case receivers(EventLoopPromise<Int>)
    /// Done, or failed.
    case done(EventLoopPromise<Void>)

    func succeed(_ receivers: Int) {
        switch self {
        case .none: break
        case .receivers(let promise): promise.succeed(receivers)
        case .done(let promise): promise.succeed(())
        }
    }

    func fail(_ error: any Error) {
        switch self {
        case .none: break
        case .receivers(let promise): promise.fail(error)
        case .done(let promise): promise.fail(error)
        }
    }
}

extension RedisRouter {
    /// Sends `command`, routed by `key`, and waits for the reply.
    @discardableResult
    public func send(_ command: RESPCommand, routedBy key: String) async throws -> RESPValue {
        try await self.sendNow(command, routedBy: key).value()
    }

    /// Runs `script` and waits for its reply.
    @discardableResult
    public func evaluate(_ script: RedisScript, keys: [String], arguments: [String] = []) async throws -> RESPValue {
        try await self.evaluateNow(
            script, keys: keys.map { ByteBuffer(string: $0) }, arguments: arguments.map { ByteBuffer(string: $0) }
        ).value()
    }
}

extension RedisClient: RedisRouter {
    public func sendNow(_ command: RESPCommand, routedBy key: String) -> EventLoopFuture<RESPValue> {
        self.sendNow(command)
    }

    public var clients: [RedisClient] { [self] }
    public var publishesSharded: Bool { false }
}

/// Several independent Redis servers, each key and channel on one of them by jump consistent hash of its hash tag
/// (``RedisKeyHashing/shard(_:of:)``): a room's channel and keys (`{room:<name>}`) on the same shard.
public final class RedisShards: RedisRouter {
    public let clients: [RedisClient]

    /// - Parameter clients: One command client per shard, in a fixed order (the order places the keys: keep it).
    public init(clients: [RedisClient]) {
        precondition(!clients.isEmpty, "at least one shard")
        self.clients = clients
    }

    /// The shard of `key` (a key or a channel).
    public func shard(of key: String) -> Int {
        RedisKeyHashing.shard(key, of: self.clients.count)
    }

    public func client(for key: String) -> RedisClient {
        self.clients[self.shard(of: key)]
    }

    public func sendNow(_ command: RESPCommand, routedBy key: String) -> EventLoopFuture<RESPValue> {
        self.client(for: key).sendNow(command)
    }

    public func evaluateNow(
        _ script: RedisScript, keys: [ByteBuffer], arguments: [ByteBuffer]
    ) -> EventLoopFuture<RESPValue> {
        let key = keys.first.map { String(buffer: $0) } ?? ""
        return self.client(for: key).evaluateNow(script, keys: keys, arguments: arguments)
    }

    public func evaluateNow(_ call: RedisScriptCall, completion: EventLoopPromise<Void>?) {
        self.client(for: call.routingKey).evaluateNow(call, completion: completion)
    }

    public func publishNow(_ payload: ByteBuffer, to channel: String, reply: PublishReply) {
        self.client(for: channel).publishNow(payload, to: channel, reply: reply)
    }

    public var publishesSharded: Bool { false }
}
