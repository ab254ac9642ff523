import HTTPTypes
import Switchboard
import SwitchboardServer
import SwitchboardTesting
import Testing

// The example app of README.md, verbatim between the markers, so the README cannot drift from the API.
// README-EXAMPLE-BEGIN
let app = Builder {
    Lint()
    ContentType("text/plain")
    AnyApplication { request in
        switch request.path {
        case "/full":  // full hijack: the app writes every byte, status line included
            let io = try await request.hijack()
            try await io.write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhijacked\n")
            try await io.close()
            return Response(status: .internalServerError)  // ignored after a full hijack
        case "/partial":  // partial hijack: the server sends status and headers, the app the rest
            return Response(status: .ok, headers: [.contentType: "text/plain"]) { io in
                try await io.write("written by the app\n")
                try await io.close()
            }
        default:
            return Response(body: .init(string: "hello from \(request.path)\n"))
        }
    }
}
// README-EXAMPLE-END

@Suite("README example")
struct ReadmeExampleTests {
    @Test("The README's example app serves, fully hijacks and partially hijacks")
    func readmeExample() async throws {
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /hello HTTP/1.1\r\nHost: t\r\n\r\n")
                let hello = try await client.readResponse()
                #expect(hello.body == "hello from /hello\n")
                #expect(hello.header("Content-Type") == "text/plain")
                try await client.send("GET /full HTTP/1.1\r\nHost: t\r\n\r\n")
                #expect(try await client.readToEnd() == "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhijacked\n")
            }
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /partial HTTP/1.1\r\nHost: t\r\n\r\n")
                let all = try await client.readToEnd()
                #expect(all.hasPrefix("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"))
                #expect(all.hasSuffix("\r\n\r\nwritten by the app\n"))
            }
        }
    }
}
