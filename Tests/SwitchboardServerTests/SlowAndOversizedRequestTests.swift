import NIOCore
import Switchboard
import SwitchboardLocks
import SwitchboardServer
import SwitchboardTesting
import Testing

@Suite("Slow and oversized requests", .timeLimit(.minutes(1)))
struct SlowAndOversizedRequestTests {
    private let collecting = AnyApplication { request in
        let body = try await request.body.collect(upTo: 1024)
        return Response(body: .init(string: "got \(body.readableBytes)"))
    }

    @Test(
        "An upload over the limit, sent whole before reading (as urllib does), gets its 413 instead of a reset",
        arguments: ["the server's limit (Content-Length)", "the app's limit (collect(upTo:))"])
    func lingeringCloseOnError(limit: String) async throws {
        // The server's own limit refuses at the head; the app's refuses once it sees the length.
        let serverLimit = limit.hasPrefix("the server") ? 1024 * 1024 : 64 * 1024 * 1024
        try await withServer(self.collecting, configuration: testConfiguration(maxBodySize: serverLimit)) {
            server, port in
            try await RawClient.withConnection(port: port) { client in
                let body = ByteBuffer(repeating: UInt8(ascii: "x"), count: 16 * 1024 * 1024)
                try await client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.readableBytes)\r\n\r\n")
                // Waits until the kernel took every byte, as a blocking client's sendall does: far more than the
                // socket buffers, so the server has answered and is closing while the upload goes on.
                try await client.channel.writeAndFlush(body).value()
                let response = try await client.readResponse()
                #expect(response.status == 413)
            }
            // The server's limit counts; the app's own (collect(upTo:)) is the app's to count.
            #expect(server.statistics.oversizedRequests == (limit.hasPrefix("the server") ? 1 : 0))
        }
    }

    @Test("A refused client that stops sending is closed 2 s after its last byte, not at the 10 s lingering bound")
    func lingeringIdleClient() async throws {
        try await withServer(self.collecting, configuration: testConfiguration(maxBodySize: 1024)) { server, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4096\r\n\r\n0123456789")
                #expect(try await client.readResponse().status == 413)
                let answered = ContinuousClock.now
                // The client neither sends nor closes: the server's linger ends on its idle timeout.
                let closed = await eventually(timeout: .seconds(9)) { server.statistics.openConnections == 0 }
                #expect(closed && ContinuousClock.now - answered < .seconds(8), "closed on the idle timeout")
            }
        }
    }

    @Test("A body that stops arriving fails the app's read after bodyReadTimeout: 408, and the connection closes")
    func bodyReadTimeout() async throws {
        var configuration = testConfiguration()
        configuration.bodyReadTimeout = .milliseconds(300)
        try await withServer(self.collecting, configuration: configuration) { server, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789")
                let start = ContinuousClock.now
                let response = try await client.readResponse()
                #expect(response.status == 408)
                #expect(ContinuousClock.now - start < .seconds(5))
                client.closeOutput()
                let rest = try await client.readToEnd()
                #expect(rest == "")
            }
            #expect(server.statistics.bodyReadTimeouts == 1, "counted")
        }
    }

    @Test("A body that keeps arriving, however slowly overall, is not timed out")
    func slowButSteadyBody() async throws {
        var configuration = testConfiguration()
        // Seven times the pauses, and 3.5 s in all: the whole suite on two cores stalls a sleep by up to a second.
        configuration.bodyReadTimeout = .milliseconds(2500)
        try await withServer(self.collecting, configuration: configuration) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n")
                for digit in 0..<10 {
                    try await Task.sleep(for: .milliseconds(350))
                    try await client.send("\(digit)")
                }
                let response = try await client.readResponse()
                #expect(response.status == 200 && response.body == "got 10")
            }
        }
    }

    @Test("A body trickled a byte at a time, each within bodyReadTimeout, still ends at bodyDeadline: 408, counted")
    func bodyDeadline() async throws {
        var configuration = testConfiguration()
        configuration.bodyReadTimeout = .seconds(2)
        configuration.bodyDeadline = .milliseconds(800)
        try await withServer(self.collecting, configuration: configuration) { server, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n")
                // A byte every 200 ms for 1.6 s: each within the 2 s between bytes, the whole past the 800 ms.
                do {
                    for _ in 0..<8 {
                        try await Task.sleep(for: .milliseconds(200))
                        try await client.send("x")
                    }
                } catch {}  // the server may have closed by then
                let response = try await client.readResponse()
                #expect(response.status == 408)
            }
            #expect(server.statistics.bodyReadTimeouts == 1)
        }
    }

    @Test(
        "Broken body framing is the client's fault: 400 for a bad chunk, 501 for an unknown transfer coding, never 500",
        arguments: [
            ("Transfer-Encoding: chunked", "zz\r\nhello\r\n0\r\n\r\n", 400),
            ("Transfer-Encoding: chunked", "5\r\nhelloXX0\r\n\r\n", 400),
            ("Transfer-Encoding: xchunked", "5\r\nhello\r\n0\r\n\r\n", 501),
            ("Transfer-Encoding: gzip, chunked", "5\r\nhello\r\n0\r\n\r\n", 501),
            ("Transfer-Encoding: chunked, chunked", "5\r\nhello\r\n0\r\n\r\n", 400),
        ])
    func brokenFraming(header: String, body: String, status: Int) async throws {
        try await withServer(self.collecting) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("POST / HTTP/1.1\r\nHost: t\r\n\(header)\r\n\r\n\(body)")
                #expect(try await client.readResponse().status == status)
            }
        }
    }
}
