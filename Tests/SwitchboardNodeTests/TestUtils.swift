import Logging
import NIOCore
import NIOPosix
import Switchboard
import SwitchboardApi
import SwitchboardNode
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardRooms
import SwitchboardRoomsRedis
import SwitchboardServer
import SwitchboardTesting
import SwitchboardTopics
import Testing

/// One node's Redis pieces, wired as the executable wires them: one command client shared by the broker and the
/// stores, the broker's subscriber connection, and the presence heartbeat running as its service does.
struct RedisNode {
    /// The command clients, one per shard.
    let shards: RedisShards
    /// The first shard's command client (the only one, mostly).
    var client: RedisClient { self.shards.clients[0] }
    let broker: RedisBroker
    let presence: RedisPresence
    let topics: Topics
    let heartbeat: Task<Void, Never>

    /// Starts the node's connections (and waits until they are up) and its presence heartbeat.
    init(
        _ redis: RedisServerProcess, presenceTTL: Duration = .seconds(30), commandTimeout: Duration = .seconds(5),
        observer: (any PresenceObserver)? = nil, leaveDelay: TimeAmount = .milliseconds(200),
        counters: ChatCounters? = nil
    ) async throws {
        try await self.init(
            shards: [redis], presenceTTL: presenceTTL, commandTimeout: commandTimeout, observer: observer,
            leaveDelay: leaveDelay, counters: counters)
    }

    /// A node over independent shards, in this order.
    init(
        shards servers: [RedisServerProcess], presenceTTL: Duration = .seconds(30),
        commandTimeout: Duration = .seconds(5), observer: (any PresenceObserver)? = nil,
        leaveDelay: TimeAmount = .milliseconds(200), counters: ChatCounters? = nil
    ) async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        self.shards = RedisShards(
            clients: servers.map { redis in
                RedisClient(
                    configuration: RedisConfiguration(
                        host: "127.0.0.1", port: redis.port, commandTimeout: commandTimeout),
                    eventLoop: group.next(), logger: testLogger)
            })
        self.broker = RedisBroker(shards: self.shards, eventLoopGroup: group, logger: testLogger)
        self.presence = RedisPresence(
            redis: self.shards, ttl: presenceTTL, observer: observer, leaveDelay: leaveDelay, counters: counters,
            logger: testLogger)
        self.topics = Topics(broker: self.broker, logger: testLogger)
        for client in self.shards.clients { client.start() }
        self.broker.start()
        let presence = self.presence
        self.heartbeat = Task { try? await presence.run() }
        try #require(await self.broker.waitUntilConnected(timeout: .seconds(5)), "the Redis node did not connect")
    }

    /// Waits until this node's Redis connections work again after Redis restarted: `waitUntilConnected` alone can
    /// answer before the client has noticed that its old connection died, and commands then fail fast.
    func waitUntilServing() async -> Bool {
        for client in self.shards.clients {
            let commands = await eventually { (try? await client.send(RESPCommand("PING"))) == .simpleString("PONG") }
            guard commands else { return false }
        }
        return await self.broker.waitUntilConnected(timeout: .seconds(5))
    }

    /// The chat on this node, with the Redis stores.
    func app(roomLog: RedisRoomLog? = nil, configuration: ChatConfiguration = .loadTest) -> ChatApplication {
        ChatApplication.make(
            topics: self.topics, configuration: configuration,
            roomLog: roomLog ?? RedisRoomLog(redis: self.shards, limits: configuration.history),
            presence: self.presence, logger: testLogger)
    }

    /// Stops the node as if it crashed: connections first, so its presence cannot say goodbye.
    func crash() async {
        for client in self.shards.clients { await client.shutdown() }
        await self.broker.shutdown()
        self.heartbeat.cancel()
        await self.heartbeat.value
    }

    /// Stops the node.
    func stop() async {
        self.heartbeat.cancel()
        await self.heartbeat.value
        await self.broker.shutdown()
        for client in self.shards.clients { await client.shutdown() }
    }
}

extension RedisServerProcess {
    /// A started `RedisBroker` for this server, connected (or the test fails).
    func connectedBroker() async throws -> RedisBroker {
        let broker = RedisBroker(
            configuration: RedisConfiguration(host: "127.0.0.1", port: self.port),
            eventLoopGroup: MultiThreadedEventLoopGroup.singleton,
            logger: testLogger
        )
        broker.start()
        try #require(await broker.waitUntilConnected(timeout: .seconds(5)), "RedisBroker did not connect")
        return broker
    }
}

extension ChatConfiguration {
    /// The defaults without rate limits: for tests that send a lot from few sockets on purpose (the limits have
    /// their own tests).
    static var loadTest: ChatConfiguration {
        var configuration = ChatConfiguration()
        configuration.rateLimits = .unlimited
        return configuration
    }
}

/// Two chat nodes on `redis`, each serving on a port of its own, for `body`; the nodes stop afterwards, also when
/// `body` throws.
func withTwoNodes(
    on redis: RedisServerProcess, configuration: ChatConfiguration = .loadTest,
    _ body: @escaping @Sendable (RedisNode, Int, RedisNode, Int) async throws -> Void
) async throws {
    let nodeA = try await RedisNode(redis)
    let nodeB = try await RedisNode(redis)
    do {
        try await withServer(nodeA.app(configuration: configuration)) { _, portA in
            try await withServer(nodeB.app(configuration: configuration)) { _, portB in
                try await body(nodeA, portA, nodeB, portB)
            }
        }
    } catch {
        await nodeA.stop()
        await nodeB.stop()
        throw error
    }
    await nodeA.stop()
    await nodeB.stop()
}

/// Runs the chat on a live server, with its services (the cluster survey, the embedded presence) beside it.
func withServer<T: Sendable>(
    _ app: ChatApplication,
    configuration: ServerConfiguration = testConfiguration(),
    eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    _ body: @Sendable (Server, Int) async throws -> T
) async throws -> T {
    try await SwitchboardTesting.withServer(
        app, services: app.services, configuration: configuration, eventLoopGroup: eventLoopGroup, body)
}
