import HTTPTypes

/// Composes middleware, mounted sub-apps and an app into one application (Rack::Builder's
/// `use`, `map` and `run`).
///
/// Middleware wrap everything in the builder, the first listed outermost; ``Mount`` routes by path
/// prefix, longest first; the one plain application is the fallback for paths no mount claims.
///
/// ```swift
/// let app = Builder {
///     Lint()
///     ContentLength()
///     ContentType("text/plain")
///     Mount("/admin") { AdminApp() }
///     MainApp()
/// }
/// ```
public struct Builder: Application {
    /// One line of a builder block.
    public enum Component: Sendable {
        /// `use`: a middleware around everything.
        case use(any Middleware)
        /// `map`: an app under a path prefix.
        case mount(Mount)
        /// `run`: the app for every other path.
        case run(any Application)
    }

    private let application: any Application

    /// Builds the application from a block of middleware, mounts and one app.
    ///
    /// - Important: A block may hold at most one plain application; a second one is a programming error.
    public init(@ApplicationBuilder _ content: () -> [Component]) {
        var middleware: [any Middleware] = []
        var mounts: [Mount] = []
        var fallback: (any Application)?
        for component in content() {
            switch component {
            case .use(let m): middleware.append(m)
            case .mount(let mount): mounts.append(mount)
            case .run(let app):
                precondition(fallback == nil, "Builder: more than one application to run; mount one with Mount")
                fallback = app
            }
        }
        var app: any Application =
            mounts.isEmpty ? (fallback ?? NotFound()) : URLMap(mounts: mounts, fallback: fallback)
        for m in middleware.reversed() {
            app = m.wrapping(app)
        }
        self.application = app
    }

    public func respond(to request: Request) async throws -> Response {
        try await self.application.respond(to: request)
    }
}

/// The result builder behind ``Builder`` and ``Mount``.
@resultBuilder
public enum ApplicationBuilder {
    public static func buildExpression(_ middleware: some Middleware) -> [Builder.Component] {
        [.use(middleware)]
    }

    public static func buildExpression(_ application: some Application) -> [Builder.Component] {
        [.run(application)]
    }

    public static func buildExpression(_ mount: Mount) -> [Builder.Component] {
        [.mount(mount)]
    }

    public static func buildBlock(_ parts: [Builder.Component]...) -> [Builder.Component] {
        parts.flatMap { $0 }
    }

    public static func buildOptional(_ part: [Builder.Component]?) -> [Builder.Component] {
        part ?? []
    }

    public static func buildEither(first part: [Builder.Component]) -> [Builder.Component] {
        part
    }

    public static func buildEither(second part: [Builder.Component]) -> [Builder.Component] {
        part
    }

    public static func buildArray(_ parts: [[Builder.Component]]) -> [Builder.Component] {
        parts.flatMap { $0 }
    }
}

/// Answers every request with `404 Not Found`.
struct NotFound: Application {
    func respond(to request: Request) async throws -> Response {
        HTTPError(.notFound).response
    }
}
