import Logging
import NIOCore
import NIOPosix
import SwitchboardLocks
import SwitchboardRedis
import SwitchboardTesting
import Testing

/// The trait of tests against a real `redis-server`.
let requiresRedis = ConditionTrait.enabled(
    if: RedisServerProcess.isEnabled,
    Comment(rawValue: RedisServerProcess.skipReason)
)

let redisTestLogger: Logger = {
    var logger = Logger(label: "switchboard.redis.test")
    logger.logLevel = .critical
    return logger
}()

extension RedisServerProcess {
    /// A configuration for this server with short timeouts.
    func configuration(
        commandTimeout: Duration = .seconds(2),
        healthCheckInterval: Duration = .seconds(10)
    ) -> RedisConfiguration {
        RedisConfiguration(
            host: "127.0.0.1",
            port: self.port,
            connectTimeout: .seconds(2),
            commandTimeout: commandTimeout,
            healthCheckInterval: healthCheckInterval
        )
    }

    /// A fresh command connection.
    func connect(on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> RedisConnection {
        try await RedisConnection.connect(to: self.configuration(), on: group.next(), logger: redisTestLogger)
    }
}

/// A TCP server on 127.0.0.1 that plays a broken Redis: it answers every read with `reply` (or nothing).
final class FakeRedisServer: Sendable {
    let channel: any Channel
    var port: Int { self.channel.localAddress!.port! }

    init(reply: ByteBuffer?, group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws {
        self.channel = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(Responder(reply: reply))
                }
            }
            .bind(host: "127.0.0.1", port: 0).value()
    }

    func stop() async {
        try? await self.channel.close()
    }

    private final class Responder: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        let reply: ByteBuffer?

        init(reply: ByteBuffer?) {
            self.reply = reply
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            guard let reply else { return }
            context.writeAndFlush(self.wrapOutboundOut(reply), promise: nil)
        }
    }
}
