import HTTPTypes

/// Adds `Content-Length` to responses whose body length is known (Rack::ContentLength).
///
/// Leaves alone responses that already carry `Content-Length` or `Transfer-Encoding`, statuses that have
/// no body, streamed bodies of unknown length and partial hijacks.
public struct ContentLength: Middleware {
    /// Creates the middleware.
    public init() {}

    public func respond(to request: Request, next: any Application) async throws -> Response {
        var response = try await next.respond(to: request)
        Self.add(to: &response, answering: request)
        return response
    }

    /// Adds `Content-Length` to `response` (the answer to `request`) where the middleware would: for an app that
    /// answers its routes itself.
    public static func add(to response: inout Response, answering request: Request) {
        guard response.hijack == nil, !request.isHijacked, !response.status.forbidsBody,
            !response.headers.contains(.contentLength), !response.headers.contains(.transferEncoding),
            let length = response.body.knownLength
        else { return }
        response.headers[.contentLength] = String(length)
    }
}
