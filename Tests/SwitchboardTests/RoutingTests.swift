import HTTPTypes
import NIOCore
import Switchboard
import Testing

private func echoPath(_ label: String) -> AnyApplication {
    AnyApplication { request in
        Response(body: .init(string: "\(label) script=\(request.scriptName) path=\(request.path)"))
    }
}

private func body(_ response: Response) -> String {
    response.body.buffer.map { String(buffer: $0) } ?? "<stream>"
}

@Suite("Builder and Router")
struct RoutingTests {
    @Test("Builder mounts apps by longest prefix and moves the prefix to scriptName")
    func mounts() async throws {
        let app = Builder {
            Mount("/admin") { echoPath("admin") }
            Mount("/admin/users/") { echoPath("users") }
            echoPath("main")
        }
        func get(_ target: String) async throws -> String {
            body(try await app.respond(to: Request(method: .get, target: target)))
        }
        #expect(try await get("/admin") == "admin script=/admin path=/")
        #expect(try await get("/admin/x?q=1") == "admin script=/admin path=/x")
        #expect(try await get("/admin/users/7") == "users script=/admin/users path=/7")
        #expect(try await get("/administrator") == "main script= path=/administrator")
        #expect(try await get("/") == "main script= path=/")
    }

    @Test("Builder applies middleware outermost first")
    func middlewareOrder() async throws {
        struct Tag: Middleware {
            let name: String
            func respond(to request: Request, next: any Application) async throws -> Response {
                var response = try await next.respond(to: request)
                response.headers.append(HTTPField(name: HTTPField.Name("X-Order")!, value: self.name))
                return response
            }
        }
        let app = Builder {
            Tag(name: "outer")
            Tag(name: "inner")
            echoPath("main")
        }
        let response = try await app.respond(to: Request(method: .get, target: "/"))
        #expect(response.headers[values: HTTPField.Name("X-Order")!] == ["inner", "outer"])
    }

    @Test("Without an app, unmatched paths get 404")
    func emptyBuilder() async throws {
        let app = Builder { Mount("/x") { echoPath("x") } }
        #expect(try await app.respond(to: Request(method: .get, target: "/y")).status == .notFound)
    }

    @Test("Router matches method and pattern, decodes captures, answers 404 and 405")
    func router() async throws {
        var router = Router()
        router.get("/rooms/:name") { request in
            Response(body: .init(string: "room \(request.parameters["name"] ?? "-")"))
        }
        router.post("/rooms/:name/messages") { request in
            Response(status: .created, body: .init(string: "posted to \(request.parameters["name"] ?? "-")"))
        }
        router.get("/files/*") { request in Response(body: .init(string: "file \(request.parameters["*"] ?? "")")) }

        let room = try await router.respond(to: Request(method: .get, target: "/rooms/caf%C3%A9"))
        #expect(body(room) == "room café")
        let head = try await router.respond(to: Request(method: .head, target: "/rooms/a"))
        #expect(head.status == .ok)
        let posted = try await router.respond(to: Request(method: .post, target: "/rooms/a/messages"))
        #expect(posted.status == .created)
        let file = try await router.respond(to: Request(method: .get, target: "/files/a/b.txt"))
        #expect(body(file) == "file a/b.txt")
        let wrongMethod = try await router.respond(to: Request(method: .delete, target: "/rooms/a"))
        #expect(wrongMethod.status == .methodNotAllowed)
        #expect(wrongMethod.headers[.allow] == "GET, HEAD")
        #expect(try await router.respond(to: Request(method: .get, target: "/nope")).status == .notFound)
        #expect(try await router.respond(to: Request(method: .get, target: "/rooms/a/b")).status == .notFound)
        let badEscape = try await router.respond(to: Request(method: .get, target: "/rooms/%zz"))
        #expect(body(badEscape) == "room %zz")
    }
}
