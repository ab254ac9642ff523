import NIOCore
import NIOPosix
import SwitchboardLocks
import SwitchboardRedis
import SwitchboardTesting
import Testing

/// How often Redis ran each command, from `INFO commandstats` (`cmdstat_evalsha:calls=3,…`).
private func calls(_ client: RedisClient) async throws -> [String: Int] {
    let info = try await client.send(RESPCommand("INFO", "commandstats")).string ?? ""
    var calls: [String: Int] = [:]
    for line in info.split(whereSeparator: \.isNewline) where line.hasPrefix("cmdstat_") {
        let name = line.dropFirst("cmdstat_".count).prefix { $0 != ":" }
        if let field = line.split(separator: ",").first?.split(separator: "=").last, let count = Int(field) {
            calls[String(name)] = count
        }
    }
    return calls
}

@Suite("Lua scripts with EVALSHA", requiresRedis, .timeLimit(.minutes(1)))
struct RedisScriptTests {
    let bump = RedisScript("return redis.call('INCRBY', KEYS[1], ARGV[1])")

    private func makeClient(_ redis: RedisServerProcess) async throws -> RedisClient {
        let client = RedisClient(
            configuration: redis.configuration(), eventLoop: MultiThreadedEventLoopGroup.singleton.next(),
            logger: redisTestLogger)
        client.start()
        #expect(await client.waitUntilConnected(timeout: .seconds(5)))
        return client
    }

    @Test(
        "The source crosses once per connection (SCRIPT LOAD pipelined before the first EVALSHA); Redis's SHA-1 is ours"
    )
    func loadedOnce() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let client = try await self.makeClient(redis)
        let replies = (0..<100).map { _ in
            client.evaluateNow(self.bump, keys: [ByteBuffer(string: "n")], arguments: [ByteBuffer(string: "2")])
        }
        for (n, reply) in replies.enumerated() { #expect(try await reply.value() == .integer(Int64(2 * (n + 1)))) }
        let stats = try await calls(client)
        #expect(stats["evalsha"] == 100)
        #expect(stats["script|load"] == 1)
        #expect(stats["eval"] == nil)
        let sha = try await client.send(RESPCommand("SCRIPT", "LOAD", self.bump.source)).string
        #expect(sha == self.bump.sha1)
        await client.shutdown()
    }

    @Test("After SCRIPT FLUSH, the next call runs with EVAL (NOSCRIPT handled) and the one after loads it again")
    func scriptFlush() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let client = try await self.makeClient(redis)
        #expect(try await client.evaluate(self.bump, keys: ["n"], arguments: ["1"]) == .integer(1))
        try await client.send(RESPCommand("SCRIPT", "FLUSH"))
        #expect(try await client.evaluate(self.bump, keys: ["n"], arguments: ["1"]) == .integer(2))
        #expect(try await client.evaluate(self.bump, keys: ["n"], arguments: ["1"]) == .integer(3))
        let stats = try await calls(client)
        #expect(stats["eval"] == 1)
        #expect(stats["script|load"] == 2)
        #expect(stats["evalsha"] == 3)
        await client.shutdown()
    }

    @Test("After Redis restarts empty, the new connection loads the script before using it: no NOSCRIPT, no EVAL")
    func redisRestart() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let client = try await self.makeClient(redis)
        #expect(try await client.evaluate(self.bump, keys: ["n"], arguments: ["5"]) == .integer(5))
        await redis.kill()
        try await redis.restart()
        // Until the client has reconnected, commands fail fast (the old connection, or none); then the first call
        // on the new connection succeeds, on a Redis that restarted empty.
        let rerun = await eventually {
            (try? await client.evaluate(self.bump, keys: ["n"], arguments: ["5"])) == .integer(5)
        }
        #expect(rerun)
        let stats = try await calls(client)
        #expect(stats["eval"] == nil)
        #expect(stats["script|load"] == 1)
        await client.shutdown()
    }
}
