import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOPosix
import Switchboard
import SwitchboardHTTPClient
import SwitchboardLocks
import SwitchboardTesting
import Testing

/// A test backend: answers `/ok` at once, `/slow` after 2 s, `/big` with 2 MiB; records the remote port of each
/// request (one per connection used).
private final class Backend: Sendable {
    let ports = Locked<[Int]>([])

    var app: some Application {
        var router = Router()
        router.post("/ok") { request in
            self.ports.withLock { $0.append(request.remoteAddress?.port ?? 0) }
            return Response(body: .init(string: "ok"))
        }
        router.post("/slow") { _ in
            try await Task.sleep(for: .seconds(2))
            return Response(body: .init(string: "late"))
        }
        router.get("/big") { _ in Response(body: .init(string: String(repeating: "x", count: 2 << 20))) }
        return router
    }
}

@Suite("HTTPClient: keep-alive pools per host, capped, bounded, within deadlines", .timeLimit(.minutes(1)))
struct HTTPClientTests {
    private func url(_ port: Int, _ path: String) throws -> OutboundURL {
        try #require(OutboundURL("http://127.0.0.1:\(port)\(path)"))
    }

    @Test("Requests one after the other reuse one connection")
    func keepAlive() async throws {
        let backend = Backend()
        try await withServer(backend.app) { _, port in
            let client = HTTPClient(group: MultiThreadedEventLoopGroup.singleton, logger: testLogger)
            defer { client.shutdown() }
            for _ in 0..<5 {
                let response = try await client.send(
                    .POST, try self.url(port, "/ok"), body: ByteBuffer(string: "x"), deadline: .seconds(5))
                #expect(response.status == 200 && String(buffer: response.body) == "ok")
            }
            #expect(Set(backend.ports.withLock { $0 }).count == 1, "\(backend.ports.withLock { $0 })")
            #expect(client.load.connections == 1)
        }
    }

    @Test("At most maxConnectionsPerHost in flight; past the wait queue a request fails at once as busy")
    func capAndQueue() async throws {
        let backend = Backend()
        try await withServer(backend.app) { _, port in
            var configuration = HTTPClient.Configuration()
            configuration.maxConnectionsPerHost = 2
            configuration.maxWaitingPerHost = 3
            let client = HTTPClient(
                configuration: configuration, group: MultiThreadedEventLoopGroup.singleton, logger: testLogger)
            defer { client.shutdown() }
            let url = try self.url(port, "/slow")
            let outcomes = await withTaskGroup(of: String.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        do {
                            return String(buffer: try await client.send(.POST, url, deadline: .seconds(10)).body)
                        } catch let error as HTTPClientError where error == .busy {
                            return "busy"
                        } catch {
                            return "\(error)"
                        }
                    }
                }
                var outcomes: [String] = []
                for await outcome in group { outcomes.append(outcome) }
                return outcomes
            }
            // 2 in flight and 3 waiting are answered (in turn, 2 s each); the other 3 are refused at once.
            #expect(outcomes.filter { $0 == "late" }.count == 5, "\(outcomes)")
            #expect(outcomes.filter { $0 == "busy" }.count == 3, "\(outcomes)")
            #expect(client.load.connections <= 2)
        }
    }

    @Test("The deadline covers the whole request; a body over the limit fails; a refused connection fails clearly")
    func deadlinesAndLimits() async throws {
        let backend = Backend()
        try await withServer(backend.app) { _, port in
            let client = HTTPClient(group: MultiThreadedEventLoopGroup.singleton, logger: testLogger)
            defer { client.shutdown() }
            let started = ContinuousClock.now
            let slow = try self.url(port, "/slow")
            let big = try self.url(port, "/big")
            await #expect(throws: HTTPClientError.self) {
                try await client.send(.POST, slow, deadline: .milliseconds(300))
            }
            // 300 ms, and time to spare for a busy machine: not a benchmark, a check that the deadline applies.
            #expect(ContinuousClock.now - started < .seconds(3))
            await #expect(throws: HTTPClientError.self) {
                try await client.send(.GET, big, deadline: .seconds(5))
            }
            #expect(try await client.send(.POST, try self.url(port, "/ok"), deadline: .seconds(5)).status == 200)
        }
        let client = HTTPClient(group: MultiThreadedEventLoopGroup.singleton, logger: testLogger)
        let nowhere = try self.url(try await unusedTestPort(), "/ok")
        await #expect(throws: (any Error).self) {
            try await client.send(.POST, nowhere, deadline: .seconds(2))
        }
        #expect(client.load.connections == 0)
    }

    @Test("maxConnections holds over all hosts; a place freed on one host goes to another host's waiting request")
    func globalCap() async throws {
        let first = Backend()
        let second = Backend()
        try await withServer(first.app) { _, firstPort in
            try await withServer(second.app) { _, secondPort in
                var configuration = HTTPClient.Configuration()
                configuration.maxConnections = 2
                let client = HTTPClient(
                    configuration: configuration, group: MultiThreadedEventLoopGroup.singleton, logger: testLogger)
                defer { client.shutdown() }
                let slow = try self.url(firstPort, "/slow")
                let ok = try self.url(secondPort, "/ok")
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<2 {
                        group.addTask { _ = try await client.send(.POST, slow, deadline: .seconds(5)) }
                    }
                    #expect(await eventually { client.load.connections == 2 })
                    // The other host has no connection and may open none: its request waits for a place.
                    let started = ContinuousClock.now
                    let answer = try await client.send(.POST, ok, body: ByteBuffer(string: "x"), deadline: .seconds(5))
                    #expect(answer.status == 200)
                    #expect(ContinuousClock.now - started > .seconds(1), "it waited for a slow request to end")
                    #expect(client.load.connections <= 2)
                    try await group.waitForAll()
                }
            }
        }
    }
}

/// A port nothing listens on: bound, read and closed.
private func unusedTestPort() async throws -> Int {
    let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).get()
    let port = channel.localAddress?.port ?? 1
    try await channel.close()
    return port
}
