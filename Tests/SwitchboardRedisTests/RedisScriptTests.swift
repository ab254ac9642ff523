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

    /// Runs an encoded call and waits until it has run.
    private func run(_ call: RedisScriptCall, on client: RedisClient) async throws {
        let ran = client.eventLoop.makePromise(of: Void.self)
        client.evaluateNow(call, completion: ran)
        try await ran.futureResult.get()
    }

    /// `bump` on `key` by `amount`, as an encoded call.
    private func bumpCall(_ key: String, by amount: Int) -> RedisScriptCall {
        var call = RedisScriptCall(self.bump, keys: [key], argumentCount: 1)
        call.append(amount)
        return call
    }

    @Test("An encoded call runs as EVALSHA with its keys and arguments (numbers, strings, bytes, negative numbers)")
    func encodedCall() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let client = try await self.makeClient(redis)
        let store = RedisScript("return redis.call('RPUSH', KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])")
        var call = RedisScriptCall(store, keys: ["a{t}", "b{t}"], argumentCount: 4)
        #expect(!call.isComplete)
        call.append(1_234_567_890_123)
        call.append(-42)
        call.append("päivää")
        call.append(ByteBuffer(bytes: [0, 13, 10, 255]))
        #expect(call.isComplete)
        #expect(call.routingKey == "a{t}")
        try await self.run(call, on: client)
        let stored = try await client.send(RESPCommand("LRANGE", "a{t}", "0", "-1")).elements ?? []
        #expect(
            stored.map(\.bytes) == ["b{t}", "1234567890123", "-42", "päivää"].map { ByteBuffer(string: $0) } + [
                ByteBuffer(bytes: [0, 13, 10, 255])
            ])
        let sums = (0..<10).map { _ in client.eventLoop.makePromise(of: Void.self) }
        for promise in sums { client.evaluateNow(self.bumpCall("n", by: 3), completion: promise) }
        for promise in sums { try await promise.futureResult.get() }
        #expect(try await client.send(RESPCommand("GET", "n")).string == "30")
        let stats = try await calls(client)
        #expect(stats["evalsha"] == 11)
        #expect(stats["script|load"] == 2)
        await client.shutdown()
    }

    @Test(
        "Encoded calls after SCRIPT FLUSH: each NOSCRIPT is sent again as EVAL, none is lost, the script is loaded again"
    )
    func encodedCallAfterFlush() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let client = try await self.makeClient(redis)
        try await self.run(self.bumpCall("n", by: 1), on: client)
        try await client.send(RESPCommand("SCRIPT", "FLUSH"))
        // Pipelined behind one another, before any reply: those Redis answers NOSCRIPT go again with the source.
        let burst = (0..<20).map { _ in client.eventLoop.makePromise(of: Void.self) }
        for promise in burst { client.evaluateNow(self.bumpCall("n", by: 1), completion: promise) }
        for promise in burst { try await promise.futureResult.get() }
        #expect(try await client.send(RESPCommand("GET", "n")).string == "21")
        try await self.run(self.bumpCall("n", by: 1), on: client)
        #expect(try await client.send(RESPCommand("GET", "n")).string == "22")
        // n is 22: each call ran once, as EVAL after its NOSCRIPT or as EVALSHA (a call queued after the first
        // NOSCRIPT came back finds the script loaded again). Redis counts an EVALSHA answered NOSCRIPT as a call.
        let stats = try await calls(client)
        #expect((1...20).contains(stats["eval"] ?? 0))
        #expect(stats["evalsha"] == 22)
        #expect((stats["script|load"] ?? 0) >= 2)
        await client.shutdown()
    }

    @Test("An encoded call whose script fails fails its promise with Redis's error")
    func encodedCallError() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let client = try await self.makeClient(redis)
        try await client.send(RESPCommand("SET", "text", "abc"))
        await #expect(throws: RedisError.self) { try await self.run(self.bumpCall("text", by: 1), on: client) }
        await client.shutdown()
    }
}
