import NIOCore
import NIOPosix
import SwitchboardLocks
import SwitchboardRedis
import SwitchboardTesting
import Synchronization
import Testing

@Suite("Redis client against redis-server", requiresRedis, .timeLimit(.minutes(1)))
struct RedisConnectionTests {
    @Test("Commands round-trip; 1,000 pipelined commands get their replies in order")
    func pipelining() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let connection = try await redis.connect()
        #expect(try await connection.send(RESPCommand("PING")) == .simpleString("PONG"))
        try await connection.send(RESPCommand("SET", "greeting", "hello"))
        #expect(try await connection.send(RESPCommand("GET", "greeting")).string == "hello")

        let replies = connection.sendPipelined((0..<1000).map { _ in RESPCommand("INCR", "counter") })
        var values: [Int64] = []
        for reply in replies {
            guard case .integer(let value) = try await reply.value() else { Issue.record("not an integer"); return }
            values.append(value)
        }
        #expect(values == Array(1...1000))
        await connection.close()
    }

    @Test("An error reply is a typed error; the connection keeps working")
    func errorReply() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let connection = try await redis.connect()
        try await connection.send(RESPCommand("SET", "text", "abc"))
        await #expect {
            try await connection.send(RESPCommand("INCR", "text"))
        } throws: { error in
            (error as? RedisError)?.kind == .serverError && (error as? RedisError)?.serverErrorCode == "ERR"
        }
        await #expect {
            try await connection.send(RESPCommand("NOSUCHCOMMAND"))
        } throws: { error in
            (error as? RedisError)?.message.contains("unknown command") == true
        }
        #expect(try await connection.send(RESPCommand("PING")) == .simpleString("PONG"))
        await connection.close()
    }

    @Test("AUTH with a password and with an ACL user, SELECT of a database; wrong credentials are refused")
    func authAndSelect() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let admin = try await redis.connect()
        try await admin.send(RESPCommand("ACL", "SETUSER", "alice", "on", ">wonderland", "~*", "&*", "+@all"))
        try await admin.send(RESPCommand("CONFIG", "SET", "requirepass", "s3cret"))

        let group = MultiThreadedEventLoopGroup.singleton
        var configuration = try RedisConfiguration(url: "redis://:s3cret@127.0.0.1:\(redis.port)/3")
        let withPassword = try await RedisConnection.connect(
            to: configuration, on: group.next(), logger: redisTestLogger)
        try await withPassword.send(RESPCommand("SET", "where", "db3"))
        #expect(try await withPassword.send(RESPCommand("GET", "where")).string == "db3")
        await withPassword.close()

        configuration = try RedisConfiguration(url: "redis://alice:wonderland@127.0.0.1:\(redis.port)/3")
        let asAlice = try await RedisConnection.connect(to: configuration, on: group.next(), logger: redisTestLogger)
        #expect(try await asAlice.send(RESPCommand("ACL", "WHOAMI")).string == "alice")
        #expect(try await asAlice.send(RESPCommand("GET", "where")).string == "db3")
        await asAlice.close()

        configuration = try RedisConfiguration(url: "redis://alice:wrong@127.0.0.1:\(redis.port)")
        await #expect {
            _ = try await RedisConnection.connect(to: configuration, on: group.next(), logger: redisTestLogger)
        } throws: { error in
            (error as? RedisError)?.serverErrorCode == "WRONGPASS"
        }
        configuration = try RedisConfiguration(url: "redis://127.0.0.1:\(redis.port)")
        let anonymous = try await RedisConnection.connect(to: configuration, on: group.next(), logger: redisTestLogger)
        await #expect {
            try await anonymous.send(RESPCommand("GET", "where"))
        } throws: { error in
            (error as? RedisError)?.serverErrorCode == "NOAUTH"
        }
        await anonymous.close()
        await admin.close()
    }

    @Test("Nothing listening: connecting fails at once with a clear error")
    func unreachable() async throws {
        let fake = try await FakeRedisServer(reply: nil)
        let port = fake.port
        await fake.stop()
        let configuration = RedisConfiguration(host: "127.0.0.1", port: port, connectTimeout: .seconds(2))
        let start = ContinuousClock.now
        await #expect {
            _ = try await RedisConnection.connect(
                to: configuration, on: MultiThreadedEventLoopGroup.singleton.next(), logger: redisTestLogger)
        } throws: { error in
            (error as? RedisError)?.kind == .connectionUnavailable
                && "\(error)".contains("cannot connect to redis://127.0.0.1:\(port)")
        }
        #expect(ContinuousClock.now - start < .seconds(2))
    }
}

@Suite("Redis client against broken servers", .timeLimit(.minutes(1)))
struct RedisBrokenServerTests {
    /// `commandTimeout` short only where the test waits for it: elsewhere a loaded machine (a release build beside
    /// the tests) could let it fire before the reply under test is read.
    private func connect(
        to fake: FakeRedisServer, healthCheck: Duration = .seconds(10), commandTimeout: Duration = .seconds(10)
    ) async throws -> RedisConnection {
        let configuration = RedisConfiguration(
            host: "127.0.0.1",
            port: fake.port,
            commandTimeout: commandTimeout,
            healthCheckInterval: healthCheck
        )
        return try await RedisConnection.connect(
            to: configuration, on: MultiThreadedEventLoopGroup.singleton.next(), logger: redisTestLogger)
    }

    @Test("A server that never answers: the command times out and the connection closes")
    func commandTimeout() async throws {
        let fake = try await FakeRedisServer(reply: nil)
        let connection = try await self.connect(to: fake, commandTimeout: .milliseconds(300))
        await #expect {
            try await connection.send(RESPCommand("PING"))
        } throws: { error in
            (error as? RedisError)?.kind == .timeout
        }
        try await connection.closeFuture.value()
        await fake.stop()
    }

    @Test("An idle connection to a silent peer is found dead by the PING health check")
    func healthCheck() async throws {
        let fake = try await FakeRedisServer(reply: nil)
        let connection = try await self.connect(
            to: fake, healthCheck: .milliseconds(100), commandTimeout: .milliseconds(300))
        let isClosed = Atomic<Bool>(false)
        connection.closeFuture.whenComplete { _ in isClosed.store(true, ordering: .relaxed) }
        let closed = await eventually(timeout: .seconds(3)) { isClosed.load(ordering: .relaxed) }
        #expect(closed)
        await fake.stop()
    }

    @Test(
        "Malformed or oversized replies: a clear protocol error, the connection closed",
        arguments: [
            ("?what\r\n", "unknown type byte"),
            ("$999999999999\r\n", "bulk string is longer than"),
            ("*99999999\r\n", "aggregate has more than"),
            ("+ 70,000 bytes without CRLF", "line is longer than"),
            ("* nested 100 deep", "nested deeper than"),
            ("$3\r\nabcXY", "does not end with CRLF"),
            (":12ab\r\n", "invalid number"),
        ]
    )
    func malformed(reply: String, message: String) async throws {
        // Long inputs are named in the arguments and built here, to keep test names readable.
        let bytes =
            switch reply {
            case "+ 70,000 bytes without CRLF": String(repeating: "+", count: 70_000)
            case "* nested 100 deep": String(repeating: "*1\r\n", count: 100) + ":1\r\n"
            default: reply
            }
        let fake = try await FakeRedisServer(reply: ByteBuffer(string: bytes))
        let connection = try await self.connect(to: fake)
        await #expect {
            try await connection.send(RESPCommand("PING"))
        } throws: { error in
            (error as? RedisError)?.kind == .protocolError && "\(error)".contains(message)
        }
        try await connection.closeFuture.value()
        // Later commands fail at once instead of queueing on a dead connection.
        await #expect(throws: RedisError.self) { try await connection.send(RESPCommand("PING")) }
        await fake.stop()
    }

    @Test("A reply nobody asked for closes the connection")
    func unsolicitedReply() async throws {
        let fake = try await FakeRedisServer(reply: ByteBuffer(string: "+PONG\r\n+EXTRA\r\n"))
        let connection = try await self.connect(to: fake)
        #expect(try await connection.send(RESPCommand("PING")) == .simpleString("PONG"))
        try await connection.closeFuture.value()
        await fake.stop()
    }
}
