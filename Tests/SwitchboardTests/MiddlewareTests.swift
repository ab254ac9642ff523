import HTTPTypes
import NIOCore
import Switchboard
import Testing

private func app(_ response: Response) -> AnyApplication {
    AnyApplication { _ in response }
}

@Suite("Middleware")
struct MiddlewareTests {
    @Test("ContentLength adds the length of fixed bodies only")
    func contentLength() async throws {
        let get = Request(method: .get, target: "/")
        let fixed = try await ContentLength().respond(to: get, next: app(Response(body: .init(string: "four"))))
        #expect(fixed.headers[.contentLength] == "4")
        let streamed = try await ContentLength().respond(to: get, next: app(Response(body: ResponseBody { _ in })))
        #expect(streamed.headers[.contentLength] == nil)
        let noContent = try await ContentLength().respond(to: get, next: app(Response(status: .noContent)))
        #expect(noContent.headers[.contentLength] == nil)
        let kept = try await ContentLength().respond(
            to: get, next: app(Response(headers: [.transferEncoding: "chunked"], body: .init(string: "x"))))
        #expect(kept.headers[.contentLength] == nil)
    }

    @Test("ContentType sets a default, keeps the app's, and skips bodiless statuses")
    func contentType() async throws {
        let get = Request(method: .get, target: "/")
        let plain = try await ContentType("text/plain").respond(to: get, next: app(Response()))
        #expect(plain.headers[.contentType] == "text/plain")
        let own = try await ContentType(default: "text/plain").respond(
            to: get, next: app(Response(headers: [.contentType: "application/json"])))
        #expect(own.headers[.contentType] == "application/json")
        let notModified = try await ContentType("text/plain").respond(
            to: get, next: app(Response(status: .notModified)))
        #expect(notModified.headers[.contentType] == nil)
    }

    @Test(
        "Lint turns contract violations into 500 with an explanation",
        arguments: [
            (Response(status: 42), "outside 100–599"),
            (Response(headers: [.contentLength: "3"], body: .init(string: "four")), "does not match"),
            (Response(headers: [.contentLength: "-1"]), "not one non-negative integer"),
            (
                Response(headers: [.contentLength: "1", .transferEncoding: "chunked"], body: .init(string: "x")),
                "Transfer-Encoding"
            ),
            (Response(status: .noContent, body: .init(string: "x")), "must not have a body"),
            (Response(status: .notModified, headers: [.contentLength: "0"]), "must not have Content-Length"),
            (Response(status: .ok) { _ in }, "not hijackable"),
            (Response(status: .switchingProtocols), "needs a partial hijack"),
        ] as [(Response, String)]
    )
    func lintViolations(response: Response, expected: String) async throws {
        let result = try await Lint().respond(to: Request(method: .get, target: "/"), next: app(response))
        #expect(result.status == .internalServerError)
        let body = try #require(result.body.buffer)
        #expect(String(buffer: body).contains(expected))
        let production = try await Lint(mode: .production).respond(
            to: Request(method: .get, target: "/"), next: app(response))
        #expect(String(buffer: try #require(production.body.buffer)) == "Internal Server Error\n")
    }

    @Test("Lint passes valid responses through unchanged")
    func lintAcceptsValid() async throws {
        let response = Response(headers: [.contentLength: "2", .contentType: "text/plain"], body: .init(string: "ok"))
        let result = try await Lint().respond(to: Request(method: .get, target: "/"), next: app(response))
        #expect(result.status == .ok)
        #expect(result.headers == response.headers)
        #expect(result.body.buffer == ByteBuffer(string: "ok"))
    }
}
