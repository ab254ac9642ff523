/// Which browser pages may open WebSockets: the configured origins, never the request's own `Host` (a DNS-rebinding
/// page controls that), so no other site can open a socket with its visitors' cookies.
///
/// A request with `Origin` comes from a browser page and is let in only from an allowed origin; one without it is not
/// a browser (a native app, a server) and is let in unless ``requiresOrigin``.
public struct OriginPolicy: Sendable, Hashable {
    /// Exact `Origin` values (`https://chat.example.com`); empty refuses every browser.
    public var allowed: [String]
    /// Refuse requests without `Origin`.
    public var requiresOrigin: Bool

    /// Creates a policy.
    public init(allowed: [String] = [], requiresOrigin: Bool = false) {
        self.allowed = allowed
        self.requiresOrigin = requiresOrigin
    }

    /// Any origin, and none: for endpoints meant for tools (a conformance echo).
    public static let any = OriginPolicy(allowed: ["*"])

    /// Why a request with this `Origin` header (`nil` if it has none) is refused; `nil` if it is let in.
    public func refusal(of origin: String?) -> String? {
        guard let origin else {
            return self.requiresOrigin ? "an Origin header is required (--require-origin)" : nil
        }
        if self.allowed.contains(origin) || self.allowed == ["*"] { return nil }
        return "origin not allowed: \(origin) (see --allowed-origin and --public-url)"
    }
}
