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
        guard response.hijack == nil, !request.isHijacked, !response.status.forbidsBody,
            response.headers[.contentLength] == nil, response.headers[.transferEncoding] == nil,
            let length = response.body.knownLength
        else { return response }
        response.headers[.contentLength] = String(length)
        return response
    }
}
