public import Logging
public import NIOCore
public import ServiceLifecycle
import SwitchboardLocks

/// A Redis Cluster: each command goes to the primary that owns its key's slot (one pipelined command connection per
/// primary), channels are sharded (`SPUBLISH`), and the slot map follows the cluster.
///
/// The topology comes from `CLUSTER SHARDS` (`CLUSTER SLOTS` on older servers), asked of any known primary or seed
/// node. It is read again on every sign that it changed: a `MOVED` reply (whose slot is reassigned at once and the
/// command sent again), a lost connection, a subscriber told to leave a channel (``requestRefresh(_:)``), and every
/// ``refreshInterval`` (every 250 ms while some slot has no primary, as during a failover). An `ASK` reply (a slot
/// being migrated) sends the command once more to the target, after `ASKING`. Observers
/// (``onTopologyChange(_:)``) hear of every new map: the sharded broker moves channels with it.
public final class RedisClusterClient: RedisRouter, Service {
    /// Host and port of a node.
    public struct Address: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        public var description: String {
            self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
        }
    }

    private struct State {
        var topology = ClusterTopology()
        var clients: [Address: RedisClient] = [:]
        var observers: [@Sendable (ClusterTopology) -> Void] = []
        var refreshing = false
        /// A refresh was asked for while one ran: another follows it.
        var refreshAgain = false
        var isShutDown = false
    }

    /// Connection settings for every node (authentication, TLS, timeouts); host and port come from the topology.
    public let configuration: RedisConfiguration
    /// The nodes the topology is first asked of (and again when no known primary answers).
    public let seeds: [Address]
    /// How often the topology is read when nothing asks for it.
    public let refreshInterval: TimeAmount
    private let group: any EventLoopGroup
    private let logger: Logger
    private let state = Locked(State())

    /// - Parameters:
    ///   - configuration: What every connection uses; its host and port are ignored.
    ///   - seeds: Nodes of the cluster (any of them; primaries or replicas).
    public init(
        configuration: RedisConfiguration, seeds: [Address], refreshInterval: TimeAmount = .seconds(5),
        eventLoopGroup: any EventLoopGroup, logger: Logger
    ) {
        precondition(!seeds.isEmpty, "a cluster needs at least one seed node")
        self.configuration = configuration
        self.seeds = seeds
        self.refreshInterval = refreshInterval
        self.group = eventLoopGroup
        self.logger = logger
    }

    // MARK: Topology

    /// The slot map as last read.
    public var topology: ClusterTopology { self.state.withLock { $0.topology } }

    /// Calls `observer` with each new slot map (on whatever thread read it).
    public func onTopologyChange(_ observer: @escaping @Sendable (ClusterTopology) -> Void) {
        self.state.withLock { $0.observers.append(observer) }
    }

    /// Reads the topology again soon (at once, unless a read is running: then right after it).
    public func requestRefresh(_ reason: String) {
        let start = self.state.withLock { state -> Bool in
            guard !state.isShutDown else { return false }
            if state.refreshing {
                state.refreshAgain = true
                return false
            }
            state.refreshing = true
            return true
        }
        guard start else { return }
        self.logger.debug("Reading the Redis Cluster topology", metadata: ["reason": "\(reason)"])
        Task { await self.refresh() }
    }

    /// Reads the topology from the first node that answers (known primaries, then seeds) and applies it.
    private func refresh() async {
        repeat {
            let known = self.state.withLock { state in
                state.topology.primaries.map { Address(host: $0.host, port: $0.port) }
            }
            var read: ClusterTopology?
            for address in known + self.seeds where read == nil {
                read = await self.readTopology(from: address)
            }
            if let read { self.apply(read) }
        } while self.state.withLock { state -> Bool in
            guard state.refreshAgain, !state.isShutDown else {
                state.refreshing = false
                return false
            }
            state.refreshAgain = false
            return true
        }
    }

    private func readTopology(from address: Address) async -> ClusterTopology? {
        var configuration = self.configuration
        configuration.host = address.host
        configuration.port = address.port
        do {
            let connection = try await RedisConnection.connect(
                to: configuration, on: self.group.next(), logger: self.logger)
            defer { Task { await connection.close() } }
            if let shards = try? await connection.send(RESPCommand("CLUSTER", "SHARDS")),
                let topology = ClusterTopology.fromShards(shards)
            {
                return topology
            }
            return ClusterTopology.fromSlots(try await connection.send(RESPCommand("CLUSTER", "SLOTS")))
        } catch {
            self.logger.debug(
                "Reading the cluster topology failed", metadata: ["node": "\(address)", "error": "\(error)"])
            return nil
        }
    }

    /// Takes `topology`: connections to new primaries, none to nodes no longer primaries, observers told.
    private func apply(_ topology: ClusterTopology) {
        let wanted = Set(topology.primaries.map { Address(host: $0.host, port: $0.port) })
        let (observers, added, removed, changed) = self.state.withLock { state in
            let changed = state.topology != topology
            state.topology = topology
            var added: [RedisClient] = []
            for address in wanted where state.clients[address] == nil {
                let client = self.makeClient(address)
                state.clients[address] = client
                added.append(client)
            }
            let gone = state.clients.keys.filter { !wanted.contains($0) }
            let removed = gone.compactMap { state.clients.removeValue(forKey: $0) }
            return (state.observers, added, removed, changed)
        }
        for client in added { client.start() }
        // Commands in flight on a node that left finish or fail; its connection closes a moment later.
        for client in removed {
            Task {
                try? await Task.sleep(for: .seconds(1))
                await client.shutdown()
            }
        }
        if changed {
            self.logger.info(
                "Redis Cluster topology",
                metadata: [
                    "primaries": "\(topology.primaries.map(\.description).joined(separator: ","))",
                    "complete": "\(topology.coversAllSlots)",
                ])
            for observer in observers { observer(topology) }
        }
    }

    private func makeClient(_ address: Address) -> RedisClient {
        var configuration = self.configuration
        configuration.host = address.host
        configuration.port = address.port
        return RedisClient(
            configuration: configuration, eventLoop: self.group.next(), logger: self.logger,
            onDisconnected: { [weak self] in self?.requestRefresh("connection to \(address) lost") })
    }

    // MARK: Service

    /// Reads the topology, then again every ``refreshInterval`` (every 250 ms while it is incomplete) until graceful
    /// shutdown; then closes every connection.
    public func run() async throws {
        self.start()
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                // Often while the cluster is not whole (a primary down: its replica is about to be promoted).
                let whole = await self.isConnected
                try? await Task.sleep(
                    for: whole ? .nanoseconds(self.refreshInterval.nanoseconds) : .milliseconds(250))
                self.requestRefresh(whole ? "periodic" : "not whole")
            }
        }
        await self.shutdown()
    }

    /// Reads the topology in the background.
    public func start() {
        self.requestRefresh("start")
    }

    /// Waits until the topology is whole and every primary is connected, or `timeout` passes.
    public func waitUntilConnected(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await self.isConnected { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await self.isConnected
    }

    /// Whether every slot has a primary and every primary is connected.
    public var isConnected: Bool {
        get async {
            let (complete, clients) = self.state.withLock { ($0.topology.coversAllSlots, Array($0.clients.values)) }
            guard complete, !clients.isEmpty else { return false }
            for client in clients where await !client.isConnected { return false }
            return true
        }
    }

    /// Stops reading the topology and closes every connection.
    public func shutdown() async {
        let clients = self.state.withLock { state in
            state.isShutDown = true
            return Array(state.clients.values)
        }
        for client in clients { await client.shutdown() }
    }

    // MARK: Routing

    public var clients: [RedisClient] { self.state.withLock { Array($0.clients.values) } }

    public var publishesSharded: Bool { true }

    /// The command client of the primary that owns `slot`, if known.
    public func client(forSlot slot: Int) -> RedisClient? {
        self.state.withLock { state in
            state.topology.owner(of: slot).flatMap { state.clients[Address(host: $0.host, port: $0.port)] }
        }
    }

    /// The primary that owns `key`'s slot, if known.
    public func owner(of key: String) -> Address? {
        self.state.withLock { state in
            state.topology.owner(of: RedisKeyHashing.slot(key)).map { Address(host: $0.host, port: $0.port) }
        }
    }

    /// The client for `address`, made if the topology does not know it yet (a `MOVED` or `ASK` target).
    private func client(at address: Address) -> RedisClient {
        let (client, isNew) = self.state.withLock { state -> (RedisClient, Bool) in
            if let client = state.clients[address] { return (client, false) }
            let client = self.makeClient(address)
            state.clients[address] = client
            return (client, true)
        }
        if isNew { client.start() }
        return client
    }

    private static let maxRedirections = 3

    public func sendNow(_ command: RESPCommand, routedBy key: String) -> EventLoopFuture<RESPValue> {
        self.run(slot: RedisKeyHashing.slot(key), attempt: 0) { client, asking in
            guard asking else { return client.sendNow(command) }
            return client.sendPipelined([RESPCommand("ASKING"), command])[1]
        }
    }

    public func evaluateNow(
        _ script: RedisScript, keys: [ByteBuffer], arguments: [ByteBuffer]
    ) -> EventLoopFuture<RESPValue> {
        let slot = RedisKeyHashing.slot(keys.first.map { String(buffer: $0) } ?? "")
        return self.run(slot: slot, attempt: 0) { client, asking in
            guard asking else { return client.evaluateNow(script, keys: keys, arguments: arguments) }
            // ASKING holds for the next command only: the source itself, so no SCRIPT LOAD comes between.
            let eval = RESPCommand(
                "EVAL", [ByteBuffer(string: script.source), ByteBuffer(string: String(keys.count))] + keys + arguments)
            return client.sendPipelined([RESPCommand("ASKING"), eval])[1]
        }
    }

    public func evaluateNow(_ call: RedisScriptCall, completion: EventLoopPromise<Void>?) {
        let slot = RedisKeyHashing.slot(call.routingKey)
        // The common case first, a room's message: the slot's primary is connected; one promise, no chain of futures.
        guard let client = self.client(forSlot: slot), client.isConnectedNow else {
            return self.evaluateRouted(call, slot: slot, completion: completion)
        }
        let promise = client.eventLoop.makePromise(of: Void.self)
        client.evaluateNow(call, completion: promise)
        promise.futureResult.whenComplete { result in
            switch result {
            case .success:
                completion?.succeed(())
            case .failure(let error) where ClusterRedirection(error) != nil:
                // Not run there (MOVED, ASK): the general way, which follows redirections.
                self.evaluateRouted(call, slot: slot, completion: completion)
            case .failure(let error):
                self.refreshIfUnreachable(error, slot: slot)
                completion?.fail(error)
            }
        }
    }

    private func evaluateRouted(_ call: RedisScriptCall, slot: Int, completion: EventLoopPromise<Void>?) {
        let done = self.run(slot: slot, attempt: 0) { client, asking in
            let promise = client.eventLoop.makePromise(of: Void.self)
            if asking {
                client.evaluateAsking(call, completion: promise)
            } else {
                client.evaluateNow(call, completion: promise)
            }
            return promise.futureResult.map { RESPValue.null }
        }
        if let completion {
            done.whenComplete { completion.completeWith($0.map { _ in }) }
        } else {
            done.whenFailure { _ in }
        }
    }

    public func publishNow(_ payload: ByteBuffer, to channel: String, reply: PublishReply) {
        let slot = RedisKeyHashing.slot(channel)
        // The common case first: the slot's primary is connected; one promise, no chain of futures.
        guard let client = self.client(forSlot: slot), client.isConnectedNow else {
            return self.publishRouted(payload, to: channel, slot: slot, reply: reply)
        }
        let promise = client.eventLoop.makePromise(of: Int.self)
        client.publishNow(payload, to: channel, sharded: true, reply: .receivers(promise))
        promise.futureResult.whenComplete { result in
            switch result {
            case .success(let receivers):
                reply.succeed(receivers)
            case .failure(let error) where ClusterRedirection(error) != nil:
                // Not published there (MOVED, ASK): the general way, which follows redirections.
                self.publishRouted(payload, to: channel, slot: slot, reply: reply)
            case .failure(let error):
                self.refreshIfUnreachable(error, slot: slot)
                reply.fail(error)
            }
        }
    }

    private func publishRouted(_ payload: ByteBuffer, to channel: String, slot: Int, reply: PublishReply) {
        let published = self.run(slot: slot, attempt: 0) { client, asking in
            let promise = client.eventLoop.makePromise(of: Int.self)
            if asking {
                _ = client.sendNow(RESPCommand("ASKING"))
            }
            client.publishNow(payload, to: channel, sharded: true, reply: .receivers(promise))
            return promise.futureResult.map { RESPValue.integer(Int64($0)) }
        }
        published.whenComplete { result in
            switch result {
            case .success(.integer(let receivers)): reply.succeed(Int(receivers))
            case .success: reply.succeed(0)
            case .failure(let error): reply.fail(error)
            }
        }
    }

    /// Runs `send` on the owner of `slot`, following `MOVED` (the slot reassigned, the topology read again) and
    /// `ASK` (once, to the target, with `ASKING`), at most ``maxRedirections`` times.
    private func run(
        slot: Int, attempt: Int, asking: Address? = nil,
        _ send: @escaping @Sendable (RedisClient, Bool) -> EventLoopFuture<RESPValue>
    ) -> EventLoopFuture<RESPValue> {
        let client: RedisClient
        if let asking {
            client = self.client(at: asking)
        } else if let owner = self.client(forSlot: slot) {
            client = owner
        } else {
            self.requestRefresh("no primary for slot \(slot)")
            return self.group.next().makeFailedFuture(
                RedisError(.connectionUnavailable, "no Redis Cluster primary serves slot \(slot) now"))
        }
        // A primary just learned of (a replica promoted, a MOVED target) is still connecting: wait for it a moment
        // rather than fail what the cluster can already serve.
        let ready: EventLoopFuture<Void> =
            client.isConnectedNow
            ? client.eventLoop.makeSucceededVoidFuture()
            : client.eventLoop.makeFutureWithTask { _ = await client.waitUntilConnected(timeout: .seconds(2)) }
        return ready.flatMap { send(client, asking != nil) }.flatMapError { error in
            guard attempt < Self.maxRedirections, let redirection = ClusterRedirection(error) else {
                self.refreshIfUnreachable(error, slot: slot)
                return client.eventLoop.makeFailedFuture(error)
            }
            let target = Address(host: redirection.host, port: redirection.port)
            switch redirection.kind {
            case .moved:
                // The slot moved: route it there from now on, and read the rest of the map again.
                self.state.withLock { state in
                    state.topology.assign(redirection.slot, to: .init(host: target.host, port: target.port, id: ""))
                }
                _ = self.client(at: target)
                self.requestRefresh("MOVED \(redirection.slot) \(target)")
                return self.run(slot: slot, attempt: attempt + 1, send)
            case .ask:
                return self.run(slot: slot, attempt: attempt + 1, asking: target, send)
            }
        }
    }

    /// Reads the topology again after a failure that says the slot's primary may be gone.
    private func refreshIfUnreachable(_ error: any Error, slot: Int) {
        if let error = error as? RedisError,
            error.kind == .connectionUnavailable || error.kind == .connectionClosed || error.kind == .timeout
        {
            self.requestRefresh("\(error.kind) on slot \(slot)")
        }
    }
}
