/// Where a request goes: an `http` or `https` URL (a webhook receiver, a hook, a JWKS document).
public struct OutboundURL: Sendable, Hashable, CustomStringConvertible {
    public let isTLS: Bool
    public let host: String
    public let port: Int
    /// Path and query, `/` at least.
    public let target: String

    /// Parses `http(s)://host[:port][/path][?query]`; `nil` for anything else (no user info, no fragment).
    public init?(_ text: String) {
        let isTLS: Bool
        let rest: Substring
        if text.hasPrefix("https://") {
            (isTLS, rest) = (true, text.dropFirst(8))
        } else if text.hasPrefix("http://") {
            (isTLS, rest) = (false, text.dropFirst(7))
        } else {
            return nil
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let target = rest.dropFirst(authority.count)
        guard !authority.isEmpty, !authority.contains("@"), !target.contains("#"), text.utf8.count <= 2048,
            !text.contains(where: { $0.isWhitespace || $0.asciiValue.map { $0 < 0x20 || $0 == 0x7F } ?? false })
        else { return nil }
        var host = String(authority)
        var port = isTLS ? 443 : 80
        if authority.hasPrefix("[") {
            // [IPv6]:port
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":"), let value = Int(after.dropFirst()), (1...65535).contains(value) else {
                    return nil
                }
                port = value
            }
        } else if let colon = authority.lastIndex(of: ":") {
            guard let value = Int(authority[authority.index(after: colon)...]), (1...65535).contains(value) else {
                return nil
            }
            host = String(authority[..<colon])
            port = value
        }
        guard !host.isEmpty else { return nil }
        self.isTLS = isTLS
        self.host = host
        self.port = port
        self.target = target.isEmpty ? "/" : (target.hasPrefix("?") ? "/" + target : String(target))
    }

    /// The `Host` field of a request to it.
    public var hostHeader: String {
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return self.port == (self.isTLS ? 443 : 80) ? host : "\(host):\(self.port)"
    }

    public var description: String {
        let defaultPort = self.isTLS ? 443 : 80
        let host = self.host.contains(":") ? "[\(self.host)]" : self.host
        return
            "\(self.isTLS ? "https" : "http")://\(host)\(self.port == defaultPort ? "" : ":\(self.port)")\(self.target)"
    }
}
