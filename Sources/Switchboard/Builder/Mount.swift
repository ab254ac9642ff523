/// An application mounted under a path prefix in a ``Builder`` (Rack's `map`).
///
/// A request whose path is the prefix or continues it with `/` goes to the mounted app, with the prefix
/// moved from ``Request/path`` to ``Request/scriptName``.
public struct Mount: Sendable {
    /// The prefix, without a trailing slash (`/admin`).
    public let prefix: String
    let application: any Application

    /// Mounts the application that `content` builds under `prefix`.
    ///
    /// - Parameters:
    ///   - prefix: The path prefix, such as `/admin`; a trailing slash is ignored.
    ///   - content: A builder block, with its own middleware if you like.
    public init(_ prefix: String, @ApplicationBuilder _ content: () -> [Builder.Component]) {
        var prefix = prefix.hasPrefix("/") ? prefix : "/" + prefix
        while prefix.count > 1 && prefix.hasSuffix("/") { prefix.removeLast() }
        self.prefix = prefix == "/" ? "" : prefix
        self.application = Builder(content)
    }

    /// The path below the prefix if `path` is under it.
    func remainder(of path: String) -> String? {
        guard path.hasPrefix(self.prefix) else { return nil }
        let rest = path.dropFirst(self.prefix.count)
        if rest.isEmpty { return "/" }
        return rest.hasPrefix("/") ? String(rest) : nil
    }
}

/// Dispatches by mount prefix, longest first (Rack::URLMap).
struct URLMap: Application {
    let mounts: [Mount]
    let fallback: (any Application)?

    init(mounts: [Mount], fallback: (any Application)?) {
        self.mounts = mounts.sorted { $0.prefix.count > $1.prefix.count }
        self.fallback = fallback
    }

    func respond(to request: Request) async throws -> Response {
        for mount in self.mounts {
            if let rest = mount.remainder(of: request.path) {
                var request = request
                request.scriptName += mount.prefix
                request.path = rest
                return try await mount.application.respond(to: request)
            }
        }
        return try await (self.fallback ?? NotFound()).respond(to: request)
    }
}
