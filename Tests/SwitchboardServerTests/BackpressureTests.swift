import HTTPTypes
import NIOCore
import Switchboard
import SwitchboardServer
import SwitchboardTesting
import Synchronization
import Testing

@Suite("Backpressure and executors")
struct BackpressureTests {
    @Test("A client that stops reading suspends a streamed response instead of growing server memory")
    func slowReaderSuspendsWriter() async throws {
        let written = Atomic<Int>(0)
        let chunk = ByteBuffer(repeating: UInt8(ascii: "x"), count: 64 * 1024)
        let total = 64 * 1024 * 1024
        let app = AnyApplication { _ in
            Response(
                body: ResponseBody(length: total) { writer in
                    for _ in 0..<(total / chunk.readableBytes) {
                        try await writer.write(chunk)
                        written.add(chunk.readableBytes, ordering: .relaxed)
                    }
                })
        }
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port, deadline: .seconds(60)) { client in
                try await client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                try await Task.sleep(for: .milliseconds(500))
                // Only socket buffers (a few MiB on loopback) and one chunk may be in flight.
                let before = written.load(ordering: .relaxed)
                #expect(before < 16 * 1024 * 1024, "wrote \(before) bytes to a client that read nothing")
                let response = try await client.readResponse()
                #expect(response.body.utf8.count == total)
            }
        }
    }

    @Test("With the app off the event loop, pipelining, bodies, streaming and hijack behave the same")
    func appOffTheEventLoop() async throws {
        var configuration = testConfiguration()
        configuration.runsApplicationOnEventLoop = false
        let app = AnyApplication { request in
            switch request.path {
            case "/hijack":
                let io = try await request.hijack()
                // A plain-request hijack: the server speaks first, then the client (see HijackedConnection).
                try await io.write("ready;")
                let bytes = try await io.read()
                try await io.write("got \(bytes.map { String(buffer: $0) } ?? "nil")")
                try await io.close()
                return Response()
            case "/stream":
                return Response(
                    body: ResponseBody { writer in
                        for part in ["a", "b", "c"] { try await writer.write(ByteBuffer(string: part)) }
                    })
            default:
                let body = try await request.body.collect(upTo: 1024)
                return Response(body: .init(string: "\(request.path) [\(String(buffer: body))]"))
            }
        }
        try await withServer(app, configuration: configuration) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send(
                    "POST /one HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi"
                        + "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n"
                        + "GET /hijack HTTP/1.1\r\nHost: t\r\n\r\n"
                )
                #expect(try await client.readResponse().body == "/one [hi]")
                #expect(try await client.readResponse().body == "abc")
                #expect(try await client.read(count: 6) == "ready;")
                try await client.send("ping")
                #expect(try await client.readToEnd() == "got ping")
            }
        }
    }
}
