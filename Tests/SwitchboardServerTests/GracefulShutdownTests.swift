import HTTPTypes
import NIOCore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Switchboard
import SwitchboardServer
import SwitchboardTesting
import Synchronization
import Testing

@Suite("Graceful shutdown")
struct GracefulShutdownTests {
    @Test("In-flight requests finish (with Connection: close), idle connections close, new ones are refused")
    func inFlightRequestFinishes() async throws {
        let started = AsyncStream<Void>.makeStream()
        let app = AnyApplication { request in
            if request.path == "/slow" {
                started.continuation.yield()
                // Still busy when the shutdown comes (however late the test triggers it), and a while after, so
                // the connection has learnt of it before the response is written.
                try? await gracefulShutdown()
                try await Task.sleep(for: .milliseconds(300))
            }
            return Response(body: .init(string: "done \(request.path)"))
        }
        let server = Server(application: app, configuration: testConfiguration(), logger: testLogger)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run() }
                let port = try await server.listeningAddress().port!
                try await RawClient.withConnection(port: port) { idle in
                    try await idle.send("GET /warmup HTTP/1.1\r\nHost: t\r\n\r\n")
                    #expect(try await idle.readResponse().body == "done /warmup")
                    try await RawClient.withConnection(port: port) { busy in
                        try await busy.send("GET /slow HTTP/1.1\r\nHost: t\r\n\r\n")
                        var iterator = started.stream.makeAsyncIterator()
                        await iterator.next()
                        trigger.triggerGracefulShutdown()
                        let response = try await busy.readResponse()
                        #expect(response.body == "done /slow")
                        #expect(response.header("Connection") == "close")
                        #expect(try await busy.readToEnd() == "")
                    }
                    // The idle keep-alive connection was closed by the shutdown.
                    #expect(try await idle.readToEnd() == "")
                }
                try await group.waitForAll()
            }
            // Stopped: nothing listens any more.
            await #expect(throws: (any Error).self) {
                try await RawClient.withConnection(port: try await server.listeningAddress().port!) { _ in }
            }
        }
    }
}

@Suite("Write deadline")
struct WriteDeadlineTests {
    @Test("A client that pipelines requests and never reads is cut off after the write timeout; shutdown then ends")
    func nonReadingClient() async throws {
        let big = String(repeating: "x", count: 256 * 1024)
        let app = AnyApplication { _ in Response(body: .init(string: big)) }
        var configuration = testConfiguration()
        configuration.writeTimeout = .milliseconds(300)
        let server = Server(application: app, configuration: configuration, logger: testLogger)
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await server.run() }
                let port = try await server.listeningAddress().port!
                try await RawClient.withConnection(port: port) { client in
                    // 200 responses of 256 KiB: far more than the socket buffers take while nobody reads.
                    try await client.send(String(repeating: "GET / HTTP/1.1\r\nHost: t\r\n\r\n", count: 200))
                    try await Task.sleep(for: .seconds(1))
                    // Cut off by now: reading drains what was sent, then the stream ends, long before 200 responses.
                    let start = ContinuousClock.now
                    let received = try await client.readToEnd()
                    #expect(received.utf8.count < 200 * 256 * 1024, "the server gave up on the client")
                    #expect(ContinuousClock.now - start < .seconds(5))
                }
                #expect(server.statistics.writeTimeouts == 1, "counted")
                let shutdown = ContinuousClock.now
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
                #expect(ContinuousClock.now - shutdown < .seconds(2), "nothing holds the shutdown")
            }
        }
    }
}
