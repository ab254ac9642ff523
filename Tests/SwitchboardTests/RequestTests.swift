import HTTPTypes
import NIOCore
import Switchboard
import Testing

@Suite("Request")
struct RequestTests {
    @Test(
        "The target splits into path and query",
        arguments: [
            ("/a/b?x=1&y=2", "/a/b", "x=1&y=2"),
            ("/", "/", nil),
            ("/p?", "/p", ""),
            ("http://example.com/abs?q", "/abs", "q"),
            ("http://example.com", "/", nil),
            ("*", "/", nil),
            ("example.com:443", "/", nil),
        ] as [(String, String, String?)]
    )
    func targetSplitting(target: String, path: String, query: String?) {
        let request = Request(method: .get, target: target)
        #expect(request.path == path)
        #expect(request.query == query)
        #expect(request.target == target)
        #expect(request.scriptName == "")
    }

    @Test("Keep-alive follows the version default and Connection tokens")
    func keepAlive() {
        #expect(Request(method: .get, target: "/").wantsKeepAlive)
        #expect(!Request(method: .get, target: "/", headers: [.connection: "Upgrade, close"]).wantsKeepAlive)
        #expect(!Request(method: .get, target: "/", version: .http1_0).wantsKeepAlive)
        #expect(
            Request(method: .get, target: "/", version: .http1_0, headers: [.connection: "Keep-Alive"]).wantsKeepAlive)
    }

    @Test("collect(upTo:) returns the body and refuses one over the limit")
    func collectBody() async throws {
        let body = RequestBody(buffer: ByteBuffer(string: "hello"))
        #expect(String(buffer: try await body.collect(upTo: 5)) == "hello")
        await #expect(throws: RequestBodyError.tooLarge(limit: 4)) { _ = try await body.collect(upTo: 4) }
        #expect(RequestBodyError.tooLarge(limit: 4).response.status == .contentTooLarge)
    }
}
