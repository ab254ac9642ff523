import NIOCore
package import SwitchboardAuth

/// The server API's settings: its keys (one ring for `/api/v1` and `POST /publish/{channel}`), their rate, and how
/// long a cluster question waits.
package struct ApiConfiguration: Sendable {
    /// Server API keys (`/api/v1`), scoped to operations and channel patterns.
    package var apiKeys: [ApiKey]
    /// Publish keys, scoped to channel patterns: `publish` only.
    package var publishKeys: [PublishKey]
    /// A key for every channel, `publish` only; with no key at all the API is off (404).
    package var publishToken: String?
    /// The publish token's request rate (each other key carries its own; every key has one bucket, whichever
    /// endpoint it uses).
    package var keyRate: TokenBucket.Limit
    /// The largest message a publish sends.
    package var maxPublishSize: Int
    /// Wrong keys one client address may present: past it the address gets `429` without a comparison, and its
    /// failures are logged once per interval with their count.
    package var failedKeys = TokenBucket.Limit(rate: 1, burst: 20)
    /// Whether loopback clients are held to ``failedKeys`` (not with the node's `--exempt-loopback`).
    package var limitsLoopback = false

    package init(
        apiKeys: [ApiKey] = [], publishKeys: [PublishKey] = [], publishToken: String? = nil,
        keyRate: TokenBucket.Limit = .init(rate: 2000, burst: 4000), maxPublishSize: Int = 64 * 1024
    ) {
        self.apiKeys = apiKeys
        self.publishKeys = publishKeys
        self.publishToken = publishToken
        self.keyRate = keyRate
        self.maxPublishSize = maxPublishSize
    }

    /// Whether any key is configured: the API is off without one.
    package var hasKeys: Bool { !self.apiKeys.isEmpty || !self.publishKeys.isEmpty || self.publishToken != nil }
}
