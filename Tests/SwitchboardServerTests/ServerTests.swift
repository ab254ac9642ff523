import HTTPTypes
import NIOCore
import Switchboard
import SwitchboardServer
import SwitchboardTesting
import Testing

/// Echoes method, path and body; `/stream` streams a chunked body; `/fail` throws; `/teapot` throws an HTTPError.
private let echoApp = AnyApplication { request in
    switch request.path {
    case "/stream":
        return Response(
            body: ResponseBody { writer in
                for part in ["one,", "two,", "three"] { try await writer.write(ByteBuffer(string: part)) }
            })
    case "/fail":
        struct Boom: Error {}
        throw Boom()
    case "/teapot":
        throw HTTPError(HTTPResponse.Status(code: 418, reasonPhrase: "I'm a teapot"), "short and stout")
    case "/ignore-body":
        return Response(body: .init(string: "ignored"))
    default:
        let body = try await request.body.collect(upTo: 1 << 20)
        return Response(body: .init(string: "\(request.method.rawValue) \(request.path) [\(String(buffer: body))]"))
    }
}

@Suite("HTTP/1.1 server")
struct ServerTests {
    @Test("Keep-alive and pipelining: several requests in one packet, responses in order, Date and Server set")
    func pipelining() async throws {
        try await withServer(echoApp) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send(
                    "GET /a HTTP/1.1\r\nHost: t\r\n\r\n"
                        + "POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nxyz"
                        + "GET /c HTTP/1.1\r\nHost: t\r\n\r\n"
                )
                let a = try await client.readResponse()
                let b = try await client.readResponse()
                let c = try await client.readResponse()
                #expect([a.body, b.body, c.body] == ["GET /a []", "POST /b [xyz]", "GET /c []"])
                #expect(a.header("Date")?.hasSuffix(" GMT") == true)
                #expect(a.header("Server") == "switchboard")
                #expect(a.header("Connection") == nil)
            }
        }
    }

    @Test("Chunked request bodies are decoded; streamed responses are chunked on HTTP/1.1")
    func chunked() async throws {
        try await withServer(echoApp) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send(
                    "POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                )
                #expect(try await client.readResponse().body == "POST /up [abcde]")
                try await client.send("GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
                let streamed = try await client.readResponse()
                #expect(streamed.wasChunked)
                #expect(streamed.header("Transfer-Encoding") == "chunked")
                #expect(streamed.body == "one,two,three")
            }
        }
    }

    @Test("A streamed response to HTTP/1.0 is delimited by closing the connection")
    func streamedHTTP10() async throws {
        try await withServer(echoApp) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /stream HTTP/1.0\r\n\r\n")
                let all = try await client.readToEnd()
                #expect(all.hasPrefix("HTTP/1.1 200 OK\r\n"))
                #expect(all.contains("Connection: close\r\n"))
                #expect(!all.contains("chunked"))
                #expect(all.hasSuffix("\r\n\r\none,two,three"))
            }
        }
    }

    @Test("HEAD gets the headers, Content-Length included, and no body")
    func head() async throws {
        try await withServer(echoApp) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("HEAD /x HTTP/1.1\r\nHost: t\r\n\r\nGET /y HTTP/1.1\r\nHost: t\r\n\r\n")
                let head = try await client.readResponse(isHEAD: true)
                #expect(head.status == 200)
                #expect(head.header("Content-Length") == "10")
                // The next bytes are the second response, so HEAD sent no body.
                #expect(try await client.readResponse().body == "GET /y []")
            }
        }
    }

    @Test("Expect: 100-continue: the interim response comes when the app reads the body")
    func expectContinue() async throws {
        try await withServer(echoApp) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("PUT /c HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
                #expect(try await client.read(through: "\r\n\r\n") == "HTTP/1.1 100 Continue\r\n\r\n")
                try await client.send("body")
                #expect(try await client.readResponse().body == "PUT /c [body]")
            }
        }
    }

    @Test("Expect: 100-continue unanswered because the app ignored the body: the response closes the connection")
    func expectContinueIgnored() async throws {
        try await withServer(echoApp) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send(
                    "PUT /ignore-body HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
                let response = try await client.readResponse()
                #expect(response.status == 200)
                #expect(response.header("Connection") == "close")
                #expect(try await client.readToEnd() == "")
            }
        }
    }

    /// Requests the server must refuse, by name (the display name of a test case shows the argument).
    enum Refused: String, CaseIterable, CustomTestStringConvertible {
        case oversizedHead, tooManyHeaders, bodyTooLarge, missingHost, twoHosts, garbage
        case contentLengthAndChunked, http2, unknownExpectation

        var testDescription: String { self.rawValue }

        var request: String {
            switch self {
            case .oversizedHead: "GET / HTTP/1.1\r\nHost: t\r\nX-Big: \(String(repeating: "a", count: 20_000))\r\n\r\n"
            case .tooManyHeaders:
                "GET / HTTP/1.1\r\nHost: t\r\n" + String(repeating: "X-Many: 1\r\n", count: 101) + "\r\n"
            case .bodyTooLarge: "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n"
            case .missingHost: "GET / HTTP/1.1\r\n\r\n"
            case .twoHosts: "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
            case .garbage: "GARBAGE\r\n\r\n"
            case .contentLengthAndChunked:
                "GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"
            case .http2: "GET / HTTP/2.0\r\nHost: t\r\n\r\n"
            case .unknownExpectation: "PUT / HTTP/1.1\r\nHost: t\r\nExpect: something-else\r\n\r\n"
            }
        }

        var status: Int {
            switch self {
            case .oversizedHead, .tooManyHeaders: 431
            case .bodyTooLarge: 413
            case .missingHost, .twoHosts, .garbage, .contentLengthAndChunked: 400
            case .http2: 505
            case .unknownExpectation: 417
            }
        }
    }

    @Test("Refused requests get the right status, then the connection closes", arguments: Refused.allCases)
    func refusals(refused: Refused) async throws {
        let request = refused.request
        let status = refused.status
        try await withServer(echoApp) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send(request)
                let response = try await client.readResponse()
                #expect(response.status == status)
                #expect(response.header("Connection") == "close")
                #expect(try await client.readToEnd() == "")
            }
        }
    }

    @Test("A chunked body over the limit gets 413 and the connection closes")
    func chunkedBodyTooLarge() async throws {
        try await withServer(echoApp, configuration: testConfiguration(maxBodySize: 10)) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send(
                    "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n12345678\r\n"
                )
                let response = try await client.readResponse()
                #expect(response.status == 413)
                #expect(response.header("Connection") == "close")
                #expect(try await client.readToEnd() == "")
            }
        }
    }

    @Test("App errors become 500; HTTPError becomes its own status")
    func appErrors() async throws {
        try await withServer(echoApp) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /fail HTTP/1.1\r\nHost: t\r\n\r\nGET /teapot HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.readResponse().status == 500)
                let teapot = try await client.readResponse()
                #expect(teapot.statusLine == "HTTP/1.1 418 I'm a teapot")
                #expect(teapot.body == "short and stout\n")
            }
        }
    }

    @Test("A slowloris client trickling its head is cut off with 408 by the head-read timeout")
    func slowloris() async throws {
        let configuration = testConfiguration(idleTimeout: .seconds(30), headReadTimeout: .milliseconds(300))
        try await withServer(echoApp, configuration: configuration) { _, port in
            try await RawClient.withConnection(port: port) { client in
                let start = ContinuousClock.now
                try await client.send("GET / HTTP/1.1\r\n")
                // Keep trickling: each byte would reset a naive per-read timer.
                for _ in 0..<20 {
                    try? await client.send("X")
                    try await Task.sleep(for: .milliseconds(50))
                }
                let all = try await client.readToEnd()
                #expect(all.hasPrefix("HTTP/1.1 408 Request Timeout\r\n"))
                #expect(ContinuousClock.now - start < .seconds(5))
            }
        }
    }

    @Test("An idle keep-alive connection is closed after the idle timeout")
    func idleTimeout() async throws {
        // 1 s rather than less: the idle clock starts at the connect, and a loaded machine (the whole suite runs
        // in parallel on two cores) can take a few hundred milliseconds to send the first request.
        let configuration = testConfiguration(idleTimeout: .seconds(1), headReadTimeout: .seconds(10))
        try await withServer(echoApp, configuration: configuration) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.readResponse().body == "GET /a []")
                let start = ContinuousClock.now
                #expect(try await client.readToEnd() == "")
                #expect(ContinuousClock.now - start < .seconds(5))
            }
        }
    }
}
