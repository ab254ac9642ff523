import SwitchboardRedis
import Testing

@Suite("Redis URLs")
struct RedisConfigurationTests {
    @Test("Host, port, user, password and database are read from the URL")
    func parses() throws {
        let plain = try RedisConfiguration(url: "redis://localhost")
        #expect(plain.host == "localhost" && plain.port == 6379 && plain.password == nil && plain.database == 0)

        let full = try RedisConfiguration(url: "redis://alice:s%3Acret@10.0.0.5:6380/3")
        #expect(full.host == "10.0.0.5" && full.port == 6380 && full.database == 3)
        #expect(full.username == "alice" && full.password == "s:cret")

        let passwordOnly = try RedisConfiguration(url: "redis://:hunter2@redis.internal:7000")
        #expect(passwordOnly.username == nil && passwordOnly.password == "hunter2" && passwordOnly.port == 7000)

        let ipv6 = try RedisConfiguration(url: "redis://[::1]:6390/1")
        #expect(ipv6.host == "::1" && ipv6.port == 6390 && ipv6.database == 1)
        #expect(plain.tls == nil)

        let secure = try RedisConfiguration(url: "rediss://:pw@cache.example:6380")
        #expect(secure.tls == RedisTLS() && secure.host == "cache.example" && secure.port == 6380)
        #expect(secure.description == "rediss://***@cache.example:6380")
    }

    @Test(
        "Bad URLs fail with a reason",
        arguments: [
            ("http://localhost", "must start with redis:// or rediss://"),
            ("unix:///tmp/redis.sock", "must start with redis:// or rediss://"),
            ("rediss://", "host is missing"),
            ("redis://", "host is missing"),
            ("redis://localhost:0", "port must be a number"),
            ("redis://localhost:99999", "port must be a number"),
            ("redis://localhost:abc", "port must be a number"),
            ("redis://localhost/db1", "database number"),
            ("redis://localhost/-1", "database number"),
            ("redis://localhost?timeout=1", "query"),
            ("redis://u:%zz@localhost", "% escape"),
            ("redis://[::1", "IPv6"),
        ]
    )
    func rejects(url: String, reason: String) {
        #expect {
            _ = try RedisConfiguration(url: url)
        } throws: { error in
            "\(error)".contains(reason)
        }
    }

    @Test("Passwords never appear in descriptions or errors")
    func masksPasswords() throws {
        let configuration = try RedisConfiguration(url: "redis://alice:topsecret@localhost:6379/2")
        #expect(!configuration.description.contains("topsecret"))
        #expect(configuration.description == "redis://alice@localhost:6379/2")
        #expect(throws: (any Error).self) { _ = try RedisConfiguration(url: "redis://alice:topsecret@localhost:0") }
        for url in ["redis://alice:topsecret@localhost:0", "rediss://alice:topsecret@localhost:0"] {
            do {
                _ = try RedisConfiguration(url: url)
            } catch {
                #expect(!"\(error)".contains("topsecret"))
            }
        }
    }
}
