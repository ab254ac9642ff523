import CoreMetrics
import Logging
import NIOCore
import ServiceLifecycle
package import SwitchboardRedis

/// A node's Redis, as its settings say: one server, independent shards (`--redis` repeated) or a Redis Cluster
/// (`--redis-cluster`). Every kind gives the same three things: where commands go, the service that runs the
/// command connections, and the broker.
package struct RedisBackend: Sendable, CustomStringConvertible {
    /// Where each command goes (the stores use it too).
    package let router: any RedisRouter
    /// Runs the command connections (the shards' clients, or the cluster client and its topology).
    let commands: any Service
    package let broker: any RedisFanOut
    package let description: String

    /// `nil` without Redis (the embedded broker).
    init?(_ settings: RedisSettings, group: any EventLoopGroup, logger: Logger, metrics: (any MetricsFactory)?) {
        if let seed = settings.clusterSeeds.first {
            let cluster = RedisClusterClient(
                configuration: seed,
                seeds: settings.clusterSeeds.map { .init(host: $0.host, port: $0.port) },
                eventLoopGroup: group, logger: logger)
            self.router = cluster
            self.commands = cluster
            self.broker = RedisClusterBroker(
                cluster: cluster, eventLoopGroup: group, logger: logger, metricsFactory: metrics)
            self.description = "Redis Cluster (seeds \(settings.clusterSeeds.map { "\($0)" }.joined(separator: ", ")))"
        } else if !settings.configurations.isEmpty {
            // Two Redis connections per process and shard: one for commands (PUBLISH, history, presence), one
            // subscriber.
            let shards = RedisShards(
                clients: settings.configurations.map {
                    RedisClient(configuration: $0, eventLoop: group.next(), logger: logger)
                })
            self.router = shards
            self.commands = RedisClients(clients: shards.clients)
            self.broker = RedisBroker(shards: shards, eventLoopGroup: group, logger: logger, metricsFactory: metrics)
            self.description = settings.configurations.map { "\($0)" }.joined(separator: ", ")
        } else {
            return nil
        }
    }
}

/// Every shard's command client as one service: started together, shut down together (after what uses them).
struct RedisClients: Service {
    let clients: [RedisClient]

    func run() async throws {
        for client in self.clients { client.start() }
        try? await gracefulShutdown()
        for client in self.clients { await client.shutdown() }
    }
}
