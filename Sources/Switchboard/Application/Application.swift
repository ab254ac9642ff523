/// An HTTP application: a function from request to response (Rack's `call(env)`).
///
/// Conform a type, or wrap a closure in ``AnyApplication``. Compose apps and ``Middleware`` with a
/// ``Builder``, route with a ``Router``.
public protocol Application: Sendable {
    /// Answers `request`.
    ///
    /// - Parameter request: The request.
    /// - Returns: The response. After a full hijack (``Request/hijack()``) the server ignores it.
    /// - Throws: An error that the server answers with 500, or with its own response when it conforms to
    ///   ``HTTPResponseConvertible``.
    func respond(to request: Request) async throws -> Response
}

/// An ``Application`` made of a closure.
///
/// ```swift
/// let hello = AnyApplication { _ in Response(body: .init(string: "hello\n")) }
/// ```
public struct AnyApplication: Application {
    private let closure: @Sendable (Request) async throws -> Response

    /// Wraps `closure` as an application.
    public init(_ closure: @escaping @Sendable (Request) async throws -> Response) {
        self.closure = closure
    }

    /// Wraps another application, erasing its type.
    public init(_ application: some Application) {
        self.closure = application.respond(to:)
    }

    public func respond(to request: Request) async throws -> Response {
        try await self.closure(request)
    }
}
