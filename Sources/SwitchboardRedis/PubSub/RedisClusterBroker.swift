public import CoreMetrics
public import Logging
public import NIOCore
public import ServiceLifecycle
import SwitchboardLocks
public import SwitchboardPubSub

/// A ``Broker`` over Redis Cluster's sharded pub/sub: `SPUBLISH` to the primary that owns a channel's slot, one
/// subscriber connection per primary with `SSUBSCRIBE` for the channels it owns, so adding primaries adds pub/sub
/// capacity (a classic `PUBLISH` in a cluster goes to every node).
///
/// Nothing is lost silently when the cluster changes. A channel whose slot moves (a failover, a resharding) is
/// subscribed at its new owner and its subscribers are told ``BrokerEvent/gap``, so clients re-sync from history;
/// so are a lost subscriber connection's channels once it is back, and those of a connection that has gone silent:
/// each subscriber connection with nothing to read for ``probeInterval`` is probed (a message published to a probe
/// channel it holds must come back within ``probeTimeout``, else the connection is dropped and made again). The
/// topology is read again whenever a connection is lost, the server unsubscribes a channel itself (`sunsubscribe`,
/// after a slot moved) or a command is redirected. The time from such a fault to the gap (subscriptions back) is
/// recorded as `switchboard_redis_redelivery_seconds`.
public final class RedisClusterBroker: Broker, Service {
    /// One primary's subscriber connection and what it holds.
    private final class Node {
        let address: RedisClusterClient.Address
        let client: RedisClient
        /// Channels subscribed (or to subscribe) here.
        var channels: Set<String> = []
        /// A channel of this node's slots, subscribed here, that probes publish to.
        var probeChannel: String?
        var lastTraffic = NIODeadline.now()
        /// A probe sent and not back yet: when it was sent.
        var probeSent: NIODeadline?
        /// When the connection was lost (or found silent, or channels moved here), until its channels are back.
        var faultSince: NIODeadline?
        /// Channels whose subscribers are owed a gap once subscribed here: they may have missed messages.
        var owed: Set<String> = []
        /// Whether the connection was ever up: before, a channel waits for it rather than owing a gap.
        var everConnected = false
        /// Since when Redis refuses `SSUBSCRIBE`s here on a live connection (logged once, not at each retry).
        var refusedSince: NIODeadline?

        init(address: RedisClusterClient.Address, client: RedisClient) {
            self.address = address
            self.client = client
        }
    }

    private final class State {
        var counts = SubscriberCounts()
        var nodes: [RedisClusterClient.Address: Node] = [:]
        /// Subscribers waiting for their channel's first `SSUBSCRIBE`.
        var waiters: [String: [EventLoopPromise<Void>]] = [:]
        var probeTask: RepeatedTask?
        var isShutDown = false
    }

    public let cluster: RedisClusterClient
    /// How long a subscriber connection may read nothing before it is probed.
    public let probeInterval: TimeAmount
    /// How long a probe may take to come back before the connection is dropped.
    public let probeTimeout: TimeAmount
    private let fanOut = LocalBroker()
    private let loop: any EventLoop
    private let group: any EventLoopGroup
    private let state: NIOLoopBoundBox<State>
    private let logger: Logger
    private let redelivery: CoreMetrics.Timer?

    /// - Parameters:
    ///   - cluster: The cluster's command client (the process runs it, for its other commands too).
    ///   - metricsFactory: Where the time from a fault to re-delivery is recorded; `nil` records nothing.
    public init(
        cluster: RedisClusterClient, eventLoopGroup: any EventLoopGroup, probeInterval: TimeAmount = .seconds(1),
        probeTimeout: TimeAmount = .seconds(2), logger: Logger, metricsFactory: (any MetricsFactory)? = nil
    ) {
        self.cluster = cluster
        self.group = eventLoopGroup
        self.loop = eventLoopGroup.next()
        self.state = .makeBoxSendingValue(State(), eventLoop: self.loop)
        self.probeInterval = probeInterval
        self.probeTimeout = probeTimeout
        self.logger = logger
        self.redelivery = metricsFactory.map {
            CoreMetrics.Timer(label: "switchboard_redis_redelivery_seconds", dimensions: [], factory: $0)
        }
        cluster.onTopologyChange { [weak self] topology in
            guard let self else { return }
            self.loop.execute { self.follow(topology) }
        }
    }

    // MARK: Service

    public func start() {
        self.loop.execute {
            let state = self.state.value
            guard state.probeTask == nil, !state.isShutDown else { return }
            state.probeTask = self.loop.scheduleRepeatedTask(
                initialDelay: self.probeInterval, delay: self.probeInterval
            ) {
                _ in self.probe()
            }
            self.follow(self.cluster.topology)
        }
    }

    public func run() async throws {
        self.start()
        try? await gracefulShutdown()
        await self.shutdown()
    }

    public func shutdown() async {
        let clients = try? await self.loop.submit { () -> [RedisClient] in
            let state = self.state.value
            state.isShutDown = true
            state.probeTask?.cancel()
            state.probeTask = nil
            defer { state.nodes = [:] }
            return state.nodes.values.map(\.client)
        }.get()
        for client in clients ?? [] { await client.shutdown() }
    }

    /// Whether the cluster is whole and connected, and every subscriber connection that holds channels is up.
    public var isConnected: Bool {
        get async { await self.unreadiness(timeout: .seconds(1)) == nil }
    }

    public var subscriberIsConnected: Bool {
        get async {
            let clients = (try? await self.loop.submit { self.state.value.nodes.values.map(\.client) }.get()) ?? []
            for client in clients where await !client.isConnected { return false }
            return true
        }
    }

    /// `nil` when every slot has a primary, every primary answers `PING` and every subscriber connection is up;
    /// else why not.
    public func unreadiness(timeout: Duration) async -> String? {
        guard self.cluster.topology.coversAllSlots else { return "some Redis Cluster slots have no primary" }
        for client in self.cluster.clients {
            do {
                try await client.ping(timeout: timeout)
            } catch {
                return "Redis Cluster primary \(client.configuration.host):\(client.configuration.port): \(error)"
            }
        }
        guard await self.subscriberIsConnected else { return "a Redis Cluster subscriber connection is down" }
        return nil
    }

    // MARK: Publishing

    public func publish(_ payload: ByteBuffer, to channel: String) async throws {
        let promise = self.group.any().makePromise(of: Void.self)
        self.publish(payload, to: channel, promise: promise)
        try await promise.futureResult.get()
    }

    public func publish(_ payload: ByteBuffer, to channel: String, promise: EventLoopPromise<Void>?) {
        self.cluster.publishNow(payload, to: channel, reply: promise.map { .done($0) } ?? .none)
    }

    public func publishCountingReceivers(_ payload: ByteBuffer, to channel: String) async throws -> Int? {
        let promise = self.group.any().makePromise(of: Int.self)
        self.cluster.publishNow(payload, to: channel, reply: .receivers(promise))
        return try await promise.futureResult.get()
    }

    // MARK: Subscribing

    public func subscribe(
        to channel: String, on eventLoop: any EventLoop, handler: @escaping @Sendable (BrokerEvent) -> Void
    ) async throws -> Subscription {
        try await self.retaining(channel, self.fanOut.subscribeNow(to: channel, on: eventLoop, handler: handler))
            .get()
    }

    public func subscribeDirect(
        to channel: String, handler: @escaping @Sendable (BrokerEvent) -> Void
    ) async throws -> Subscription {
        try await self.retaining(channel, self.fanOut.subscribeDirectNow(to: channel, handler: handler)).get()
    }

    private func retaining(_ channel: String, _ local: Subscription) -> EventLoopFuture<Subscription> {
        let subscription = Subscription {
            local.cancel()
            self.loop.execute { self.release(channel) }
        }
        return self.loop.flatSubmit { self.retain(channel) }.map { subscription }
    }

    /// Counts a local subscriber in; the first one subscribes at the channel's owner (the future completes when it
    /// confirmed, or at once while it cannot be reached: the subscription is made when it can, with a gap).
    private func retain(_ channel: String) -> EventLoopFuture<Void> {
        let state = self.state.value
        let count = state.counts.add(channel)
        if count > 1 {
            guard state.waiters[channel] != nil else { return self.loop.makeSucceededVoidFuture() }
            let promise = self.loop.makePromise(of: Void.self)
            state.waiters[channel]!.append(promise)
            return promise.futureResult
        }
        guard let node = self.home(of: channel) else {
            // Placed (and owed a gap) when the topology says where.
            self.cluster.requestRefresh("no primary for channel \(channel)")
            return self.loop.makeSucceededVoidFuture()
        }
        node.channels.insert(channel)
        let promise = self.loop.makePromise(of: Void.self)
        state.waiters[channel] = [promise]
        if node.everConnected {
            self.subscribe([channel], at: node)
        } else {
            // A connection still being made: the subscription goes with it. Not made in time, the subscriber goes
            // on and is owed a gap.
            let bound = NIOLoopBound(node, eventLoop: self.loop)
            self.loop.scheduleTask(in: TimeAmount(self.cluster.configuration.connectTimeout)) {
                let state = self.state.value
                guard let waiters = state.waiters[channel], !bound.value.everConnected else { return }
                state.waiters[channel] = nil
                bound.value.owed.insert(channel)
                bound.value.faultSince = bound.value.faultSince ?? .now()
                for waiter in waiters { waiter.succeed() }
            }
        }
        return promise.futureResult
    }

    private func release(_ channel: String) {
        let state = self.state.value
        guard state.counts.remove(channel) else { return }
        for node in state.nodes.values where node.channels.remove(channel) != nil {
            node.client.sendWithoutReply(RESPCommand("SUNSUBSCRIBE", channel))
        }
    }

    /// The subscriber of the primary that owns `channel` now, made if needed; `nil` while no primary owns it.
    private func home(of channel: String) -> Node? {
        guard let address = self.cluster.owner(of: channel) else { return nil }
        return self.node(at: address)
    }

    private func node(at address: RedisClusterClient.Address) -> Node {
        let state = self.state.value
        if let node = state.nodes[address] { return node }
        var configuration = self.cluster.configuration
        configuration.host = address.host
        configuration.port = address.port
        let loop = self.loop
        let fanOut = self.fanOut
        let client = RedisClient(
            configuration: configuration, eventLoop: loop, logger: self.logger,
            // Every subscriber connection runs on the broker's loop: these are called there.
            onPush: { [weak self] value in self?.pushed(value, from: address) },
            onMessages: { [weak self] messages in
                fanOut.publishBatchNow(messages.map { (String(buffer: $0.channel), $0.payload) })
                self?.heard(messages, from: address)
            },
            onConnected: { [weak self] connection in
                guard let broker = self else { return connection.eventLoop.makeSucceededVoidFuture() }
                return connection.eventLoop.flatSubmit { broker.connected(address, connection) }
            },
            onDisconnected: { [weak self] in self?.disconnected(address) })
        let node = Node(address: address, client: client)
        state.nodes[address] = node
        client.start()
        return node
    }

    /// `SSUBSCRIBE`s `channels` (one command each: they may be of different slots) at `node`; those owed a gap get it
    /// once subscribed. Not connected: done on connection.
    private func subscribe(_ channels: [String], at node: Node) {
        guard !channels.isEmpty else { return }
        let bound = NIOLoopBound(node, eventLoop: self.loop)
        self.ssubscribe(channels, with: node.client.sendPipelined).whenSuccess { refusal in
            self.confirmed(channels, at: bound.value, refusal: refusal)
        }
    }

    /// Sends `SSUBSCRIBE` for each of `channels` through `send`; the future has the first failure, `nil` if none.
    private func ssubscribe(
        _ channels: [String], with send: ([RESPCommand]) -> [EventLoopFuture<RESPValue>]
    ) -> EventLoopFuture<(any Error)?> {
        let replies = send(channels.map { RESPCommand("SSUBSCRIBE", $0) })
        return EventLoopFuture.whenAllComplete(replies, on: self.loop).map { results in
            results.lazy.compactMap { if case .failure(let error) = $0 { error } else { nil } }.first
        }
    }

    /// The subscriptions of `channels` at `node` were answered: their waiters go on, and those owed a gap get it. If
    /// they failed, their subscribers are owed a gap and they are made again: when the connection is back if it is
    /// down, else (Redis refused them: `MOVED` from a node that no longer owns the slot) after the map is read again.
    private func confirmed(_ channels: [String], at node: Node, refusal: (any Error)?) {
        let state = self.state.value
        if let refusal {
            guard node.everConnected else { return }  // the first connection makes them, and answers the waiters
            node.owed.formUnion(channels)
            node.faultSince = node.faultSince ?? .now()
            for channel in channels {
                for waiter in state.waiters.removeValue(forKey: channel) ?? [] { waiter.succeed() }
            }
            if node.client.isConnectedNow { self.retry(channels, at: node, after: refusal) }
            return
        }
        for channel in channels {
            for waiter in state.waiters.removeValue(forKey: channel) ?? [] { waiter.succeed() }
        }
        if let since = node.refusedSince {
            node.refusedSince = nil
            self.logger.info(
                "Redis Cluster SSUBSCRIBE accepted again",
                metadata: [
                    "node": "\(node.address)", "after_ms": "\((NIODeadline.now() - since).nanoseconds / 1_000_000)",
                ])
        }
        let gaps = channels.filter { node.owed.contains($0) }
        guard !gaps.isEmpty else { return }
        node.owed.subtract(gaps)
        self.fanOut.broadcast(.gap, to: gaps)
        guard node.owed.isEmpty, let since = node.faultSince else { return }
        node.faultSince = nil
        let elapsed = NIODeadline.now() - since
        self.redelivery?.recordNanoseconds(elapsed.nanoseconds)
        self.logger.info(
            "Redis Cluster subscriptions restored; subscribers told of a gap",
            metadata: [
                "node": "\(node.address)", "channels": "\(gaps.count)",
                "after_ms": "\(elapsed.nanoseconds / 1_000_000)",
            ])
    }

    // MARK: Following the cluster

    /// Moves every channel whose slot has another owner now: `SUNSUBSCRIBE` at the old one, `SSUBSCRIBE` at the new
    /// one, a gap to its subscribers; subscriber connections to nodes that are no longer primaries close.
    private func follow(_ topology: ClusterTopology) {
        let state = self.state.value
        guard !state.isShutDown else { return }
        let now = NIODeadline.now()
        var moves: [RedisClusterClient.Address: (channels: [String], since: NIODeadline)] = [:]
        for (address, node) in state.nodes {
            for channel in node.channels {
                guard let owner = self.cluster.owner(of: channel), owner != address else { continue }
                node.channels.remove(channel)
                node.owed.remove(channel)
                node.client.sendWithoutReply(RESPCommand("SUNSUBSCRIBE", channel))
                // The fault began when the old owner was lost, if it was: that is what re-delivery is timed from.
                let since = min(node.faultSince ?? now, moves[owner]?.since ?? now)
                moves[owner, default: ([], now)].channels.append(channel)
                moves[owner]!.since = since
            }
        }
        for (owner, move) in moves {
            let channels = move.channels
            let node = self.node(at: owner)
            node.channels.formUnion(channels)
            node.owed.formUnion(channels)
            node.faultSince = min(node.faultSince ?? move.since, move.since)
            self.logger.info(
                "Redis Cluster channels moved with their slots",
                metadata: ["to": "\(owner)", "channels": "\(channels.count)"])
            self.subscribe(channels, at: node)
        }
        // Channels no node holds (their owner was unknown): placed now.
        let held = Set(state.nodes.values.flatMap(\.channels))
        let homeless = state.counts.channels.filter { !held.contains($0) }
        for channel in homeless {
            guard let node = self.home(of: channel) else { continue }
            node.channels.insert(channel)
            node.owed.insert(channel)
            node.faultSince = node.faultSince ?? now
            self.subscribe([channel], at: node)
        }
        let primaries = Set(topology.primaries.map { RedisClusterClient.Address(host: $0.host, port: $0.port) })
        for (address, node) in state.nodes where !primaries.contains(address) && node.channels.isEmpty {
            state.nodes[address] = nil
            let client = node.client
            Task { await client.shutdown() }
        }
        for (address, node) in state.nodes where primaries.contains(address) { self.chooseProbeChannel(node, topology) }
    }

    /// Picks a channel of one of `node`'s slots to probe it with (`switchboard:probe:{n}` for the first `n` that
    /// hashes there), subscribing it when it changes.
    private func chooseProbeChannel(_ node: Node, _ topology: ClusterTopology) {
        if let current = node.probeChannel, self.cluster.owner(of: current) == node.address { return }
        let owned = Set(topology.slots(of: .init(host: node.address.host, port: node.address.port, id: "")))
        guard !owned.isEmpty else { return }
        for n in 0..<100_000 {
            let candidate = "switchboard:probe:{\(n)}"
            guard owned.contains(RedisKeyHashing.slot(candidate)) else { continue }
            if let previous = node.probeChannel { node.client.sendWithoutReply(RESPCommand("SUNSUBSCRIBE", previous)) }
            node.probeChannel = candidate
            _ = node.client.sendPipelined([RESPCommand("SSUBSCRIBE", candidate)])
            return
        }
    }

    // MARK: Connection events (on the loop)

    /// A subscriber connection is (back) up: its channels and probe channel are subscribed on it before it is
    /// handed out, and, after a fault, their subscribers told of the gap.
    private func connected(_ address: RedisClusterClient.Address, _ connection: RedisConnection) -> EventLoopFuture<
        Void
    > {
        let state = self.state.value
        guard let node = state.nodes[address] else { return self.loop.makeSucceededVoidFuture() }
        node.lastTraffic = .now()
        node.probeSent = nil
        node.everConnected = true
        if let probe = node.probeChannel { _ = connection.sendPipelined([RESPCommand("SSUBSCRIBE", probe)]) }
        return self.subscribeHeld(at: node, on: connection, done: [])
    }

    /// Subscribes on a connection not handed out yet every channel `node` holds but `done`, and again for channels
    /// added meanwhile: a subscriber who came while these were answered could not send its own `SSUBSCRIBE` (the
    /// client has no connection to send it on until this future completes), and would otherwise wait, unsubscribed
    /// and told of no gap, for the next reconnect (CI run 13: a room's 89 messages lost silently).
    private func subscribeHeld(
        at node: Node, on connection: RedisConnection, done: Set<String>
    ) -> EventLoopFuture<Void> {
        let channels = Array(node.channels.subtracting(done))
        guard !channels.isEmpty else { return self.loop.makeSucceededVoidFuture() }
        let bound = NIOLoopBound(node, eventLoop: self.loop)
        return self.ssubscribe(channels, with: connection.sendPipelined).flatMap { refusal in
            let node = bound.value
            self.confirmed(channels, at: node, refusal: refusal)
            return self.subscribeHeld(at: node, on: connection, done: done.union(channels))
        }
    }

    /// `SSUBSCRIBE`s a live connection refused: the map is read again (a move takes them to their new owner) and
    /// those still held here are asked again 250 ms later, until subscribed. Before, they stayed unsubscribed until
    /// the connection dropped, their subscribers hearing nothing and told of no gap (CI run 13: 89 messages).
    private func retry(_ channels: [String], at node: Node, after refusal: any Error) {
        if node.refusedSince == nil {
            node.refusedSince = .now()
            self.logger.warning(
                "Redis Cluster SSUBSCRIBE refused; reading the map again and retrying",
                metadata: ["node": "\(node.address)", "channels": "\(channels.count)", "error": "\(refusal)"])
        }
        self.cluster.requestRefresh("SSUBSCRIBE refused by \(node.address)")
        let bound = NIOLoopBound(node, eventLoop: self.loop)
        self.loop.scheduleTask(in: .milliseconds(250)) {
            let node = bound.value
            guard self.state.value.nodes[node.address] === node else { return }
            self.subscribe(channels.filter { node.channels.contains($0) }, at: node)
        }
    }

    private func disconnected(_ address: RedisClusterClient.Address) {
        self.loop.execute {
            guard let node = self.state.value.nodes[address] else { return }
            node.faultSince = node.faultSince ?? .now()
            node.owed.formUnion(node.channels)
        }
        self.cluster.requestRefresh("subscriber connection to \(address) lost")
    }

    private func pushed(_ value: RESPValue, from address: RedisClusterClient.Address) {
        guard let elements = value.elements, elements.first?.string == "sunsubscribe",
            let channel = elements.count > 1 ? elements[1].string : nil
        else { return }
        // Our own SUNSUBSCRIBE's answer, for a channel no longer held here; else the server let go of a channel of
        // a slot it no longer owns: the topology tells where it went.
        guard let node = self.state.value.nodes[address], node.channels.contains(channel) else { return }
        node.faultSince = node.faultSince ?? .now()
        node.owed.insert(channel)
        self.cluster.requestRefresh("sunsubscribe of \(channel) from \(address)")
        // If the map read meanwhile still puts it here, subscribed again here (a refusal reads the map again).
        let bound = NIOLoopBound(node, eventLoop: self.loop)
        self.loop.scheduleTask(in: .milliseconds(250)) {
            let node = bound.value
            guard self.state.value.nodes[address] === node, node.channels.contains(channel) else { return }
            self.subscribe([channel], at: node)
        }
    }

    private func heard(
        _ messages: [(channel: ByteBuffer, payload: ByteBuffer)], from address: RedisClusterClient.Address
    ) {
        guard let node = self.state.value.nodes[address] else { return }
        node.lastTraffic = .now()
        node.probeSent = nil
    }

    /// Probes each subscriber connection that read nothing for ``probeInterval``; drops the ones whose probe did not
    /// come back within ``probeTimeout``.
    private func probe() {
        let now = NIODeadline.now()
        for node in self.state.value.nodes.values {
            guard let probe = node.probeChannel else { continue }
            if let sent = node.probeSent {
                guard now - sent > self.probeTimeout else { continue }
                self.logger.warning(
                    "Redis Cluster subscriber connection silent: its probe did not come back; reconnecting",
                    metadata: ["node": "\(node.address)", "timeout": "\(self.probeTimeout)"])
                node.probeSent = nil
                node.faultSince = node.faultSince ?? sent
                node.owed.formUnion(node.channels)
                node.client.dropConnection()
                self.cluster.requestRefresh("silent subscriber connection to \(node.address)")
            } else if now - node.lastTraffic > self.probeInterval {
                node.probeSent = now
                self.cluster.publishNow(ByteBuffer(string: "probe"), to: probe, reply: .none)
            }
        }
    }

    /// The channels this process is subscribed to in Redis.
    public var subscribedChannels: [String] {
        get async throws { try await self.loop.submit { Array(self.state.value.counts.channels) }.get() }
    }
}

/// What a node asks of its Redis broker, one Redis, shards or a cluster: health, and the service it runs as.
public protocol RedisFanOut: Broker, Service {
    /// Starts the connections in the background (what ``Service/run()`` does first).
    func start()
    /// Closes the connections it owns.
    func shutdown() async
    /// Waits until every connection is up, or `timeout` passes; whether they are.
    func waitUntilConnected(timeout: Duration) async -> Bool
    /// Whether every connection is up now.
    var isConnected: Bool { get async }
    /// Whether every subscriber connection is up now.
    var subscriberIsConnected: Bool { get async }
    /// `nil` when the broker works now (every server answers `PING`), else why not.
    func unreadiness(timeout: Duration) async -> String?
}

extension RedisBroker: RedisFanOut {}

extension RedisClusterBroker: RedisFanOut {
    public func waitUntilConnected(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await self.cluster.isConnected, await self.subscriberIsConnected { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return await self.isConnected
    }
}
