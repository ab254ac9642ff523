import HTTPTypes
package import Switchboard

/// The seed's `hijack.ru` (unicorn's Rack hijack test app), written in Swift line for line.
///
/// ```ruby
/// use Rack::Lint
/// use Rack::ContentLength
/// use Rack::ContentType, "text/plain"
/// run lambda { |env| case env["PATH_INFO"] when "/hijack_req" … when "/hijack_res" … end }
/// ```
///
/// - `GET /hijack_req`: a full hijack; the app writes `HTTP/1.0 200 OK\r\n\r\nrequest.hijacked` and closes.
/// - `GET /hijack_res`: a partial hijack; the server sends status and headers, the app the body.
/// - Both return a ``dieIfUsed`` body that kills the process if the server touches it; it never does.
package enum HijackDemo {
    /// The demo application.
    package static func makeApplication() -> some Application {
        Builder {
            Lint()
            ContentLength()
            ContentType("text/plain")
            AnyApplication { env in
                switch env.path {
                case "/hijack_req":
                    if env.isHijackable {
                        let io = try await env.hijack()
                        try await io.write("HTTP/1.0 200 OK\r\n\r\n")
                        try await io.write("request.hijacked")
                        try await io.close()
                        return Response(status: 500, headers: [:], body: dieIfUsed)
                    }
                    return Response(status: 500, headers: [:], body: .init(string: "hijack BAD\n"))
                case "/hijack_res":
                    let r = "response.hijacked"
                    return Response(status: 200, headers: [.contentLength: String(r.utf8.count)], body: dieIfUsed) {
                        io in
                        try await io.write(r)
                        try await io.close()
                    }
                default:
                    // The Ruby app returns nil here, which Rack::Lint turns into an error; we answer plainly.
                    return Response(status: 404, body: .init(string: "Not Found: try /hijack_req or /hijack_res\n"))
                }
            }
        }
    }

    /// The seed's `DieIfUsed`: a body whose use aborts the process, as `abort` does in Ruby.
    package static let dieIfUsed = ResponseBody { _ in
        fatalError("body.each called after response hijack")
    }
}
