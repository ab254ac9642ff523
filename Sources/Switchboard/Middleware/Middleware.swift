/// Code around an application (Rack middleware): it sees each request before the app and each response
/// after it, and may answer by itself.
///
/// ```swift
/// struct Timing: Middleware {
///     func respond(to request: Request, next: any Application) async throws -> Response {
///         let start = ContinuousClock.now
///         var response = try await next.respond(to: request)
///         response.headers[HTTPField.Name("Server-Timing")!] = "app;dur=\(ContinuousClock.now - start)"
///         return response
///     }
/// }
/// ```
public protocol Middleware: Sendable {
    /// Answers `request`, usually by calling `next`.
    ///
    /// - Parameters:
    ///   - request: The request.
    ///   - next: The rest of the stack.
    /// - Returns: The response.
    /// - Throws: Errors from `next`, or its own.
    func respond(to request: Request, next: any Application) async throws -> Response
}

extension Middleware {
    /// This middleware in front of `application`, as one application.
    public func wrapping(_ application: any Application) -> any Application {
        MiddlewareApplication(middleware: self, next: application)
    }
}

/// A middleware bound to the application it wraps.
struct MiddlewareApplication<M: Middleware>: Application {
    let middleware: M
    let next: any Application

    func respond(to request: Request) async throws -> Response {
        try await self.middleware.respond(to: request, next: self.next)
    }
}
