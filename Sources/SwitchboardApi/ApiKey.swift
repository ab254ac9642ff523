package import SwitchboardAuth

/// What a server API request does; an ``ApiKey`` lists the ones it may.
package enum ApiOperation: String, CaseIterable, Sendable, Hashable {
    case publish, history, presence, channels, info, disconnect, unsubscribe
}

/// A key of the server API (`/api/v1`): a secret, the operations it may do and the channels it may do them on.
///
/// Channel scope: `publish` checks the channel; `history`, `presence` and `unsubscribe` check the room's channel
/// `room:<name>`; `channels` lists only the channels the patterns match; `info` and `disconnect` name no channel.
package struct ApiKey: Sendable {
    /// A name for logs and errors (never the secret).
    package var name: String
    /// What `Authorization: Bearer` must carry: 16 characters or more.
    package var secret: String
    /// The operations this key may do.
    package var operations: Set<ApiOperation>
    /// The channels this key may act on.
    package var channels: [ChannelPattern]
    /// Requests per second, after a burst; past it `429` with `Retry-After`.
    package var rate: TokenBucket.Limit

    /// Creates a key.
    package init(
        name: String, secret: String, operations: Set<ApiOperation>, channels: [ChannelPattern],
        rate: TokenBucket.Limit = .init(rate: 2000, burst: 4000)
    ) {
        self.name = name
        self.secret = secret
        self.operations = operations
        self.channels = channels
        self.rate = rate
    }

    /// A publish key (`--publish-key`, `--publish-token`): `publish` only, on its channels.
    package init(_ key: PublishKey) {
        self.init(name: key.name, secret: key.secret, operations: [.publish], channels: key.channels, rate: key.rate)
    }

    /// Whether this key may act on `channel`.
    package func covers(_ channel: String) -> Bool {
        self.channels.contains { $0.matches(channel) }
    }

    /// Whether this key names every channel (`*`): node-wide figures (`info`) are for such keys only.
    package var coversEverything: Bool {
        self.channels.contains { $0.pattern == "*" }
    }

    /// Parses `name:secret:operations:patterns`: operations are a comma list of ``ApiOperation`` names or `*` for
    /// all, patterns a comma list of channel patterns (`*` for every channel). The secret may not contain `:`.
    package static func parse(_ text: String) -> Result<ApiKey, KeyError> {
        let parts = text.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
        let names = ApiOperation.allCases.map(\.rawValue).joined(separator: ",")
        guard parts.count == 4, !parts[0].isEmpty else {
            return .failure(KeyError("an API key is name:secret:operations:patterns, operations * or some of \(names)"))
        }
        guard parts[1].count >= 16 else {
            return .failure(KeyError("an API key's secret has 16 characters or more"))
        }
        var operations: Set<ApiOperation> = []
        for name in parts[2].split(separator: ",") {
            if name == "*" {
                operations.formUnion(ApiOperation.allCases)
            } else if let operation = ApiOperation(rawValue: String(name)) {
                operations.insert(operation)
            } else {
                return .failure(KeyError("unknown API operation \"\(name)\": use * or some of \(names)"))
            }
        }
        guard !operations.isEmpty else { return .failure(KeyError("an API key names at least one operation")) }
        let patterns: [ChannelPattern]
        switch ChannelPattern.list(parts[3], of: "an API key") {
        case .success(let parsed): patterns = parsed
        case .failure(let error): return .failure(error)
        }
        return .success(
            ApiKey(name: String(parts[0]), secret: String(parts[1]), operations: operations, channels: patterns))
    }
}

extension ChannelPattern {
    /// A key's comma-separated channel patterns, at least one.
    static func list(_ text: Substring, of what: String) -> Result<[ChannelPattern], KeyError> {
        var patterns: [ChannelPattern] = []
        for pattern in text.split(separator: ",") {
            guard let parsed = ChannelPattern(String(pattern)) else {
                return .failure(KeyError("a channel pattern is 1 to 128 bytes"))
            }
            patterns.append(parsed)
        }
        guard !patterns.isEmpty else { return .failure(KeyError("\(what) names at least one channel pattern")) }
        return .success(patterns)
    }
}
