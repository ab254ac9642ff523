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
