import CoreMetrics
package import Prometheus
import SwitchboardLocks
package import SwitchboardRedis
package import SwitchboardRooms
package import SwitchboardServer
package import SwitchboardTopics
import SwitchboardWebSocket
package import SwitchboardWebhooks

/// The process's numbers in the Prometheus text format: what the layers count (``Server/statistics``,
/// ``Topics/statistics``, the chat's counters, ``RedisClient/statistics``), read when scraped, and the histograms
/// the layers record through swift-metrics (fan-out lag, publish latency) into ``factory``.
///
/// Counts are kept by the layers as relaxed atomics, bumped where things happen (per batch on the fan-out path), and
/// turned into Prometheus counters only at scrape time: metrics cost the message path no lock and no allocation.
/// Labels are a fixed set (endpoint, route pattern, status, close code, reason): never a user id or channel name.
package final class MetricsExporter: Sendable {
    /// Where every metric lives; scraped by ``render()``.
    package let registry = PrometheusCollectorRegistry()
    private let sources = Locked(Sources())
    /// What each counter showed at the last scrape, by name and labels: a scrape adds what grew since.
    private let shown = Locked<[String: Int]>([:])

    private struct Sources {
        var server: Server?
        var topics: Topics?
        var chat: ChatCounters?
        /// The command clients now, one per shard or cluster primary.
        var redis: (@Sendable () -> [RedisClient])?
        var broker: (any RedisFanOut)?
        var webhooks: WebhookDispatcher?
    }

    package init() {}

    /// The swift-metrics factory that records into ``registry``, with buckets for latencies from 100 µs to 10 s:
    /// give it to `Topics` and `RedisBroker` (or bootstrap `MetricsSystem` with it).
    package var factory: PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: self.registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2.5),
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(10),
        ]
        return factory
    }

    /// Reads `server`'s statistics at each scrape.
    package func observe(server: Server) { self.sources.withLock { $0.server = server } }

    /// Reads the fan-out engine's and the chat's counts at each scrape.
    package func observe(topics: Topics, chat: ChatCounters) {
        self.sources.withLock {
            $0.topics = topics
            $0.chat = chat
        }
    }

    /// Reads the Redis connections' state and counts at each scrape.
    package func observe(redis: @escaping @Sendable () -> [RedisClient], broker: any RedisFanOut) {
        self.sources.withLock {
            $0.redis = redis
            $0.broker = broker
        }
    }

    /// Reads the webhooks' delivery counts at each scrape.
    package func observe(webhooks: WebhookDispatcher) { self.sources.withLock { $0.webhooks = webhooks } }

    /// Everything, in the Prometheus text format (version 0.0.4).
    package func render() async -> [UInt8] {
        let sources = self.sources.withLock { $0 }
        // The async reads first (a connection's state is on its loop), then one synchronous pass under the lock, so
        // two scrapes at once never add the same growth twice.
        var redisState: (commands: Bool, subscriber: Bool)?
        let redisClients = sources.redis?() ?? []
        if !redisClients.isEmpty, let broker = sources.broker {
            var commands = true
            for client in redisClients where await !client.isConnected { commands = false }
            redisState = (commands, await broker.subscriberIsConnected)
        }
        let process = ProcessStatistics.read()
        return self.shown.withLock { shown in
            var writer = Writer(registry: self.registry, shown: shown)
            if let server = sources.server { writer.server(server.statistics) }
            if let topics = sources.topics { writer.topics(topics) }
            if let chat = sources.chat { writer.chat(chat) }
            if let redisState { writer.redis(redisClients, state: redisState) }
            if let webhooks = sources.webhooks { writer.webhooks(webhooks.counts) }
            if let process { writer.process(process) }
            shown = writer.shown
            return self.registry.emitToBuffer()
        }
    }
}
