/// The browser origins of the node's own page, derived from where the server is configured to be reached.
///
/// An `Origin` is `scheme://host[:port]` with the port omitted when it is the scheme's default, as browsers send
/// it. The request's own `Host` header is never trusted for this: a DNS-rebinding page controls it.
public enum BrowserOrigins {
    /// The origin of a public URL (`https://chat.example.com/any/path` → `https://chat.example.com`); `nil` if it
    /// is not an `http` or `https` URL with a host.
    public static func origin(ofPublicURL url: String) -> String? {
        let lower = url.lowercased()
        let scheme: String
        if lower.hasPrefix("https://") {
            scheme = "https"
        } else if lower.hasPrefix("http://") {
            scheme = "http"
        } else {
            return nil
        }
        let rest = url.dropFirst(scheme.count + 3)
        let authority = rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard !authority.isEmpty, !authority.contains("@"), !authority.contains(" ") else { return nil }
        let (host, port) = self.split(authority)
        guard !host.isEmpty else { return nil }
        if let port, Int(port) == nil { return nil }
        return self.origin(scheme: scheme, host: host.lowercased(), port: port.flatMap { Int($0) })
    }

    /// The origins a browser shows for a server listening on `host:port`: one per scheme, and for a loopback host
    /// every loopback spelling. A wildcard host (`0.0.0.0`, `::`) or port 0 has none: the page's address is not
    /// known, so it must be configured.
    public static func origins(listeningOn host: String, port: Int) -> [String] {
        guard port != 0 else { return [] }
        let host = host.lowercased()
        if ["0.0.0.0", "::", "[::]", ""].contains(host) { return [] }
        let hosts =
            ["127.0.0.1", "localhost", "::1", "[::1]"].contains(host) ? ["127.0.0.1", "localhost", "[::1]"] : [host]
        return hosts.flatMap { host in
            ["http", "https"].map { self.origin(scheme: $0, host: host, port: port) }
        }
    }

    private static func origin(scheme: String, host: String, port: Int?) -> String {
        let host = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        guard let port, port != (scheme == "https" ? 443 : 80) else { return "\(scheme)://\(host)" }
        return "\(scheme)://\(host):\(port)"
    }

    private static func split(_ authority: Substring) -> (host: Substring, port: Substring?) {
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return ("", nil) }
            let host = authority[...close]
            let after = authority[authority.index(after: close)...]
            return (host, after.hasPrefix(":") ? after.dropFirst() : nil)
        }
        guard let colon = authority.lastIndex(of: ":") else { return (authority, nil) }
        return (authority[..<colon], authority[authority.index(after: colon)...])
    }
}
