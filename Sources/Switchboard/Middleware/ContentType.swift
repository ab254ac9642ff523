import HTTPTypes

/// Sets a default `Content-Type` on responses that have none (Rack::ContentType).
///
/// Statuses that have no body (1xx, 204, 304) are left without one.
public struct ContentType: Middleware {
    /// The media type to set.
    public let defaultType: String

    /// Creates the middleware.
    ///
    /// - Parameter defaultType: The media type for responses without one, such as `"text/plain"`.
    public init(_ defaultType: String = "text/html") {
        self.defaultType = defaultType
    }

    /// Creates the middleware; the same as ``init(_:)``.
    public init(default defaultType: String) {
        self.defaultType = defaultType
    }

    public func respond(to request: Request, next: any Application) async throws -> Response {
        var response = try await next.respond(to: request)
        if !response.status.forbidsBody, response.headers[.contentType] == nil {
            response.headers[.contentType] = self.defaultType
        }
        return response
    }
}
