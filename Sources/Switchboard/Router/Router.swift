public import HTTPTypes

/// Routes requests by method and path pattern to handlers.
///
/// A pattern is a path of segments; `:name` captures one segment into ``Request/parameters``
/// (percent-decoded), and a final `*` captures the rest of the path under `"*"`. `HEAD` falls back to
/// the `GET` route. A path that matches with another method gets `405` with `Allow`; none gets `404`.
///
/// ```swift
/// var router = Router()
/// router.get("/rooms/:name") { request in
///     Response(body: .init(string: "room \(request.parameters["name"]!)\n"))
/// }
/// ```
public struct Router: Application {
    private struct Route: Sendable {
        let method: HTTPRequest.Method
        let source: String
        let pattern: RoutePattern
        let application: any Application
    }

    private var routes: [Route] = []

    /// Creates a router with no routes.
    public init() {}

    /// Adds a route.
    ///
    /// - Parameters:
    ///   - method: The method it answers.
    ///   - pattern: The path pattern, such as `/rooms/:name`.
    ///   - application: What answers matching requests.
    public mutating func add(_ method: HTTPRequest.Method, _ pattern: String, _ application: some Application) {
        self.routes.append(
            Route(method: method, source: pattern, pattern: RoutePattern(pattern), application: application))
    }

    /// The pattern (as it was added, such as `/rooms/:name`) of the first route whose path matches `request`'s,
    /// whatever its method; `nil` if none does. A label for metrics and logs that never carries a captured value.
    public func pattern(matching request: Request) -> String? {
        self.routes.first { $0.pattern.match(request.path) != nil }?.source
    }

    /// What answers `request`, found once: the route's pattern (for metrics and logs) and the answer to run.
    public struct Match: Sendable {
        /// The pattern of the first route whose path matches, whatever its method; `nil` if none does.
        public let pattern: String?
        private let answer: Answer

        private enum Answer: Sendable {
            case route(any Application, Request)
            case response(Response)
        }

        fileprivate init(pattern: String?, route: any Application, request: Request) {
            self.pattern = pattern
            self.answer = .route(route, request)
        }

        fileprivate init(pattern: String?, response: Response) {
            self.pattern = pattern
            self.answer = .response(response)
        }

        /// Answers the request: the route's answer, or the router's `404` or `405` with `Allow`.
        public func respond() async throws -> Response {
            switch self.answer {
            case .route(let application, let request): try await application.respond(to: request)
            case .response(let response): response
            }
        }
    }

    /// Finds the route for `request`, matching its path against each route once.
    public func match(_ request: Request) -> Match {
        var allowed: [HTTPRequest.Method] = []
        var headFallback: (Route, Parameters)?
        var first: String?
        for route in self.routes {
            guard let captures = route.pattern.match(request.path) else { continue }
            first = first ?? route.source
            if route.method == request.method {
                return Match(pattern: first, route: route.application, request: request.with(captures))
            }
            if request.method == .head && route.method == .get && headFallback == nil {
                headFallback = (route, captures)
            }
            if !allowed.contains(route.method) { allowed.append(route.method) }
        }
        if let (route, captures) = headFallback {
            return Match(pattern: first, route: route.application, request: request.with(captures))
        }
        if allowed.isEmpty { return Match(pattern: nil, response: HTTPError(.notFound).response) }
        if allowed.contains(.get) && !allowed.contains(.head) { allowed.append(.head) }
        var response = HTTPError(.methodNotAllowed).response
        response.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
        return Match(pattern: first, response: response)
    }

    /// Adds a route answered by a closure.
    public mutating func add(
        _ method: HTTPRequest.Method,
        _ pattern: String,
        _ handler: @escaping @Sendable (Request) async throws -> Response
    ) {
        self.add(method, pattern, AnyApplication(handler))
    }

    /// Adds a `GET` route (which also answers `HEAD`).
    public mutating func get(_ pattern: String, _ handler: @escaping @Sendable (Request) async throws -> Response) {
        self.add(.get, pattern, handler)
    }

    /// Adds a `POST` route.
    public mutating func post(_ pattern: String, _ handler: @escaping @Sendable (Request) async throws -> Response) {
        self.add(.post, pattern, handler)
    }

    /// Adds a `PUT` route.
    public mutating func put(_ pattern: String, _ handler: @escaping @Sendable (Request) async throws -> Response) {
        self.add(.put, pattern, handler)
    }

    /// Adds a `DELETE` route.
    public mutating func delete(_ pattern: String, _ handler: @escaping @Sendable (Request) async throws -> Response) {
        self.add(.delete, pattern, handler)
    }

    public func respond(to request: Request) async throws -> Response {
        try await self.match(request).respond()
    }
}

extension Request {
    fileprivate func with(_ captures: Parameters) -> Request {
        var request = self
        for (name, value) in captures { request.parameters.set(name, to: value) }
        return request
    }
}
