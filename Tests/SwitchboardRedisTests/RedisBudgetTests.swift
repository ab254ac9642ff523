import NIOCore
import NIOPosix
import SwitchboardLocks
import SwitchboardRedis
import SwitchboardTesting
import Testing

@Suite("Pending work is bounded in bytes", requiresRedis, .timeLimit(.minutes(1)))
struct RedisBudgetTests {
    @Test("A hung Redis (SIGSTOP): at most maxPendingBytes wait, the rest fail at once; all is given back after")
    func hungRedis() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        var configuration = redis.configuration(commandTimeout: .seconds(30))
        configuration.maxPendingBytes = 4 * 1024 * 1024
        let client = RedisClient(
            configuration: configuration, eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: redisTestLogger)
        client.start()
        #expect(await client.waitUntilConnected(timeout: .seconds(5)))
        try redis.pause()
        let payload = ByteBuffer(repeating: UInt8(ascii: "x"), count: 60 * 1024)
        let start = ContinuousClock.now
        let replies = (0..<200).map { _ in client.sendNow(RESPCommand("PUBLISH", [ByteBuffer(string: "c"), payload])) }
        #expect(client.bytesPending <= 4 * 1024 * 1024, "\(client.bytesPending) bytes pending")
        #expect(client.bytesPending > 3 * 1024 * 1024, "the budget was used")
        // The ones past the budget have failed already, without waiting for anything.
        var refused = 0
        for reply in replies.suffix(100) {
            do {
                _ = try await reply.value()
            } catch let error as RedisError where error.kind == .tooManyPendingCommands {
                refused += 1
            }
        }
        #expect(refused == 100)
        #expect(ContinuousClock.now - start < .seconds(15), "not the 30 s command timeout")
        try redis.resume()
        for reply in replies.prefix(60) { #expect(try await reply.value() == .integer(0)) }
        var refusedInAll = 0
        for reply in replies {
            do {
                _ = try await reply.value()
            } catch let error as RedisError where error.kind == .tooManyPendingCommands {
                refusedInAll += 1
            }
        }
        #expect(client.statistics.refusedForBudget == refusedInAll, "each refusal counted")
        #expect(await eventually { client.bytesPending == 0 }, "given back as the replies come")
        #expect(try await client.send(RESPCommand("PING")) == .simpleString("PONG"))
        await client.shutdown()
    }
}
