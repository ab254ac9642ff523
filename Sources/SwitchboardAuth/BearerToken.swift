/// Where a bearer token travels on an HTTP request: `Authorization: Bearer <token>` (servers, native apps) or, from a
/// browser, which cannot set headers on a WebSocket, an offered subprotocol `bearer.<token>`. Never the URL, which
/// access logs keep.
public enum BearerToken {
    /// The token of `authorization`, else of an offered `bearer.<token>` subprotocol in `subprotocols` (the
    /// `Sec-WebSocket-Protocol` header); `nil` if neither carries one.
    public static func of(authorization: String?, subprotocols: String?) -> String? {
        if let value = authorization {
            let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            if parts.count == 2, parts[0].lowercased() == "bearer" {
                let token = parts[1].drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }
                return token.isEmpty ? nil : String(token.reversed())
            }
        }
        for offered in (subprotocols ?? "").split(separator: ",") {
            let name = offered.drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }
            let protocolName = String(name.reversed())
            if protocolName.hasPrefix("bearer."), protocolName.count > 7 { return String(protocolName.dropFirst(7)) }
        }
        return nil
    }
}
