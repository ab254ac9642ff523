package import SwitchboardAuth

/// A key of the publish API: a secret and the channels it may publish to (`POST /publish/{channel}`), at a rate.
package struct PublishKey: Sendable {
    /// A name for logs (never the secret).
    package var name: String
    /// What `Authorization: Bearer` must carry: 16 characters or more.
    package var secret: String
    /// The channels this key may publish to.
    package var channels: [ChannelPattern]
    /// Requests per second, after a burst; past it `429` with `Retry-After`.
    package var rate: TokenBucket.Limit

    /// Creates a key.
    package init(
        name: String, secret: String, channels: [ChannelPattern],
        rate: TokenBucket.Limit = .init(rate: 2000, burst: 4000)
    ) {
        self.name = name
        self.secret = secret
        self.channels = channels
        self.rate = rate
    }

    /// Parses `name:secret:pattern[,pattern…]` (the secret may not contain `:`); `nil` with the reason otherwise.
    package static func parse(_ text: String) -> Result<PublishKey, KeyError> {
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty else {
            return .failure(KeyError("a publish key is name:secret:pattern[,pattern...]"))
        }
        guard parts[1].count >= 16 else {
            return .failure(KeyError("a publish key's secret has 16 characters or more"))
        }
        let patterns: [ChannelPattern]
        switch ChannelPattern.list(parts[2], of: "a publish key") {
        case .success(let parsed): patterns = parsed
        case .failure(let error): return .failure(error)
        }
        return .success(PublishKey(name: String(parts[0]), secret: String(parts[1]), channels: patterns))
    }
}
