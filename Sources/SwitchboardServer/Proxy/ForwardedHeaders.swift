import HTTPTypes
import NIOCore
import Switchboard

/// Who the client is and which scheme it used, from `X-Forwarded-For` and `X-Forwarded-Proto` when the peer is a
/// trusted proxy (``ServerConfiguration/trustedProxies``), else from the connection itself. Headers from any other
/// peer are ignored: a client could write anything there.
struct ForwardedHeaders {
    /// The most `X-Forwarded-For` entries looked at, from the right.
    static let maxHops = 32

    let client: SocketAddress?
    let scheme: String
    /// Whether the peer was a trusted proxy (so the client is the forwarded one).
    let isProxied: Bool

    init(peer: SocketAddress?, headers: HTTPFields, trusted: [IPAddressRange], isTLS: Bool) {
        let ownScheme = isTLS ? "https" : "http"
        guard let peer, !trusted.isEmpty, trusted.contains(where: { $0.contains(peer) }) else {
            self.client = peer
            self.scheme = ownScheme
            self.isProxied = false
            return
        }
        self.isProxied = true
        // The rightmost address that is not a trusted proxy: entries further left were written by whoever sent the
        // request to the first trusted proxy, and may be made up.
        var client = peer
        let hops = headers[values: .xForwardedFor].joined(separator: ",").split(separator: ",").suffix(Self.maxHops)
        for hop in hops.reversed() {
            let text = hop.trimmingHTTPWhitespace()
            guard let address = try? SocketAddress(ipAddress: String(text), port: 0) else { break }
            client = address
            if !trusted.contains(where: { $0.contains(address) }) { break }
        }
        self.client = client
        let proto = headers[values: .xForwardedProto].last?.split(separator: ",").last?.trimmingHTTPWhitespace()
            .lowercased()
        self.scheme = proto.flatMap { ["http", "https"].contains($0) ? $0 : nil } ?? ownScheme
    }
}

extension HTTPField.Name {
    static let xForwardedFor = Self("X-Forwarded-For")!
    static let xForwardedProto = Self("X-Forwarded-Proto")!
}
