import NIOCore
import SwitchboardDemos
import SwitchboardServer
import SwitchboardTesting
import Testing

/// The seed's `hijack.ru`, checked byte for byte against the results measured on the Ruby original.
@Suite("Hijack demo (the seed's hijack.ru)")
struct HijackDemoTests {
    @Test("GET /hijack_req over HTTP/1.1 and 1.0: exactly the app's bytes, then close", arguments: ["1.1", "1.0"])
    func hijackRequest(version: String) async throws {
        try await withServer(HijackDemo.makeApplication()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /hijack_req HTTP/\(version)\r\nHost: 127.0.0.1\r\n\r\n")
                #expect(try await client.readToEnd() == "HTTP/1.0 200 OK\r\n\r\nrequest.hijacked")
                #expect(client.sawEOF)
            }
        }
    }

    @Test("GET /hijack_res: 200, Content-Length 17, text/plain, no chunking, the body, then close")
    func hijackResponse() async throws {
        try await withServer(HijackDemo.makeApplication()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /hijack_res HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                let head = try await client.read(through: "\r\n\r\n")
                let response = try #require(TestResponse(head: head))
                #expect(response.statusLine == "HTTP/1.1 200 OK")
                #expect(response.header("Content-Length") == "17")
                #expect(response.header("Content-Type") == "text/plain")
                #expect(response.header("Transfer-Encoding") == nil)
                #expect(try await client.readToEnd() == "response.hijacked")
            }
        }
    }

    @Test("The DieIfUsed bodies are never touched: the process survives many hijacks")
    func survivesManyHijacks() async throws {
        try await withServer(HijackDemo.makeApplication()) { _, port in
            for i in 0..<200 {
                let path = i.isMultiple(of: 2) ? "/hijack_req" : "/hijack_res"
                try await RawClient.withConnection(port: port) { client in
                    try await client.send("GET \(path) HTTP/1.1\r\nHost: t\r\n\r\n")
                    let all = try await client.readToEnd()
                    #expect(all.hasSuffix(i.isMultiple(of: 2) ? "request.hijacked" : "response.hijacked"))
                }
            }
        }
    }

    @Test("Another path gets an ordinary response; a hijack on the second request of a keep-alive connection works")
    func keepAliveThenHijack() async throws {
        try await withServer(HijackDemo.makeApplication()) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                let first = try await client.readResponse()
                #expect(first.status == 404)
                #expect(first.header("Content-Type") == "text/plain")
                #expect(first.header("Connection") == nil)
                try await client.send("GET /hijack_req HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.readToEnd() == "HTTP/1.0 200 OK\r\n\r\nrequest.hijacked")
            }
        }
    }
}
