// swift-tools-version:6.1
import PackageDescription

// `SWITCHBOARD_TSAN=1 swift test --sanitize=thread …` (README "Thread Sanitizer"): `Locked` becomes a lock TSan sees.
let threadSanitizerBuild = Context.environment["SWITCHBOARD_TSAN"] == "1"

// Strict settings shared by every target: Swift 6 language mode (complete concurrency checking is
// implied), explicit `any`, and imports that are internal unless we write `public import`.
let strictSettings: [SwiftSetting] =
    [
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
        .enableUpcomingFeature("InternalImportsByDefault"),
    ] + (threadSanitizerBuild ? [.define("SWITCHBOARD_TSAN")] : [])

let package = Package(
    name: "Switchboard",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "Switchboard", targets: ["Switchboard"]),
        .library(name: "SwitchboardServer", targets: ["SwitchboardServer"]),
        .library(name: "SwitchboardWebSocket", targets: ["SwitchboardWebSocket"]),
        .library(name: "SwitchboardPubSub", targets: ["SwitchboardPubSub"]),
        .library(name: "SwitchboardRedis", targets: ["SwitchboardRedis"]),
        .library(name: "SwitchboardTopics", targets: ["SwitchboardTopics"]),
        .library(name: "SwitchboardAuth", targets: ["SwitchboardAuth"]),
        .library(name: "SwitchboardNode", targets: ["SwitchboardNode"]),
        .library(name: "SwitchboardJSON", targets: ["SwitchboardJSON"]),
        .executable(name: "switchboard", targets: ["switchboard"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        // 3.x or 4.x: jwt-kit 5.7+ needs 4.1 or later, and the resolver picks one version for all.
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // The config file: swift-configuration layers it under the environment; Yams (which its YAML trait uses)
        // gives `check-config` the line of each setting.
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: ["YAML"]),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    ],
    targets: [
        // Layer 2: the app interface (Rack's ideas). No NIOPosix: apps are testable without sockets.
        .target(
            name: "Switchboard",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Layer 1: the HTTP/1.1 server on SwiftNIO, with full and partial hijack.
        .target(
            name: "SwitchboardServer",
            dependencies: [
                "SwitchboardLocks",
                "Switchboard",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Layer 3: WebSocket (RFC 6455 + RFC 7692) on a hijacked connection.
        .target(
            name: "SwitchboardWebSocket",
            dependencies: [
                "SwitchboardLocks",
                "Switchboard",
                "CSwitchboardZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: strictSettings
        ),
        // Layer 4: publish/subscribe (the Broker protocol) and the embedded LocalBroker. Knows nothing of Redis.
        .target(
            name: "SwitchboardPubSub",
            dependencies: [
                "SwitchboardLocks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // Layer 5: our own RESP2/RESP3 codec, a pipelined Redis client and the Redis broker.
        .target(
            name: "SwitchboardRedis",
            dependencies: [
                "SwitchboardPubSub",
                "SwitchboardLocks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        // Layer 6: the fan-out engine: topics, members per event loop, one broker subscription per topic.
        .target(
            name: "SwitchboardTopics",
            dependencies: [
                "SwitchboardWebSocket",
                "SwitchboardLocks",
                "SwitchboardPubSub",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // Identity: connection tokens (JWT, verified by jwt-kit with the algorithm pinned by the configured key),
        // channel patterns and token buckets. Knows nothing of sockets or chat.
        .target(
            name: "SwitchboardAuth",
            dependencies: [
                "SwitchboardLocks",
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: strictSettings
        ),
        // System zlib for permessage-deflate: raw deflate streams with sync flush and context takeover.
        .systemLibrary(name: "CSwitchboardZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The apps the executable ships until the chat lands: a landing page and the seed's hijack.ru.
        .target(
            name: "SwitchboardDemos",
            dependencies: [
                "Switchboard",
                "SwitchboardWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strictSettings
        ),
        // Layer 7a: the rooms protocol (`/ws`): the session state machine (events in, actions out) and its WebSocket
        // adapter, identity and limits, the registry of connections by user and by room, presence that reports
        // transitions, history; the stores are protocols with in-memory versions (the Redis ones are
        // SwitchboardRoomsRedis).
        .target(
            name: "SwitchboardRooms",
            dependencies: [
                "SwitchboardLocks",
                "Switchboard",
                "SwitchboardWebSocket",
                "SwitchboardPubSub",
                "SwitchboardTopics",
                "SwitchboardAuth",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // A strict JSON reader (RFC 8259) that checks a text once and walks it where needed, values' bytes kept as sent.
        .target(name: "SwitchboardJSON", swiftSettings: strictSettings),
        // Layer 7b: the server API (`/api/v1` and `POST /publish/{channel}`, on one KeyRing), its strict JSON reader
        // and its OpenAPI document; cluster questions go through the fan-out engine's survey.
        .target(
            name: "SwitchboardApi",
            dependencies: [
                "SwitchboardJSON",
                "SwitchboardLocks",
                "Switchboard",
                "SwitchboardWebSocket",
                "SwitchboardTopics",
                "SwitchboardRooms",
                "SwitchboardAuth",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // The server API's OpenAPI document, served at /api/v1/openapi.json (docs/openapi.json links to it).
            resources: [.embedInCode("openapi.json")],
            swiftSettings: strictSettings
        ),
        // The node's HTTP client: keep-alive connections pooled per host, capped, every request within a deadline; for
        // hooks, webhooks and JWKS documents.
        .target(
            name: "SwitchboardHTTPClient",
            dependencies: [
                "SwitchboardLocks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // Webhooks and backend hooks: presence transitions and socket events POSTed to the app's backend, batched,
        // signed, retried, from bounded queues; the connect, join and say hooks. Knows no Redis: it consumes what
        // the rooms' presence reports.
        .target(
            name: "SwitchboardWebhooks",
            dependencies: [
                "SwitchboardHTTPClient",
                "SwitchboardRooms",
                "SwitchboardAuth",
                "SwitchboardLocks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // The rooms' stores in Redis: history in streams, presence (with its transitions and delayed leaves) in one
        // script per change, every key of a room under one hash tag.
        .target(
            name: "SwitchboardRoomsRedis",
            dependencies: [
                "SwitchboardRooms",
                "SwitchboardLocks",
                "SwitchboardRedis",
                "SwitchboardPubSub",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        // Operations: the layers' counts and histograms in the Prometheus text format.
        .target(
            name: "SwitchboardMetrics",
            dependencies: [
                "SwitchboardLocks",
                "Switchboard",
                "SwitchboardServer",
                "SwitchboardWebSocket",
                "SwitchboardTopics",
                "SwitchboardRedis",
                "SwitchboardRooms",
                "SwitchboardWebhooks",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strictSettings
        ),
        // The node: one application type (a ServiceLifecycle Service) that reads the typed configuration (flags over
        // environment over the YAML file, each setting defined once), builds the object graph, owns the service
        // order and serves the page, /chat, /subscribe, /ws, the server API and the health checks.
        .target(
            name: "SwitchboardNode",
            dependencies: [
                "SwitchboardHTTPClient",
                "SwitchboardLocks",
                "Switchboard",
                "SwitchboardServer",
                "SwitchboardWebSocket",
                "SwitchboardPubSub",
                "SwitchboardRedis",
                "SwitchboardTopics",
                "SwitchboardAuth",
                "SwitchboardRooms",
                "SwitchboardRoomsRedis",
                "SwitchboardApi",
                "SwitchboardWebhooks",
                "SwitchboardMetrics",
                "SwitchboardDemos",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Yams", package: "Yams"),
            ],
            // The page: HTML, CSS and JS as files, compiled into the binary.
            resources: [.embedInCode("Page/index.html"), .embedInCode("Page/app.js"), .embedInCode("Page/app.css")],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "switchboard",
            dependencies: [
                "SwitchboardLocks",
                "SwitchboardNode",
                "SwitchboardServer",
                "SwitchboardDemos",
                "SwitchboardPubSub",
                "SwitchboardRedis",
                "SwitchboardRooms",
                "SwitchboardRoomsRedis",
                "SwitchboardAuth",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        // The lock every module uses for state shared across threads: `Mutex`, or in Thread Sanitizer builds NIO's
        // pthread box (TSan does not see `Mutex`'s futex on Linux); and `future.value()`, an awaited future's value
        // handed over so that TSan sees it.
        .target(
            name: "SwitchboardLocks",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "switchboardTests",
            dependencies: [
                "SwitchboardLocks",
                "switchboard",
                "SwitchboardNode",
                "SwitchboardTesting",
                "SwitchboardRedis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        // Test helpers shared by the test targets: a live server on port 0 and a raw TCP client.
        .target(
            name: "SwitchboardTesting",
            dependencies: [
                "SwitchboardLocks",
                "Switchboard",
                "SwitchboardServer",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SwitchboardAuthTests",
            dependencies: [
                "SwitchboardLocks",
                "SwitchboardAuth",
                "SwitchboardTesting",
                .product(name: "JWTKit", package: "jwt-kit"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SwitchboardTests",
            dependencies: [
                "Switchboard",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SwitchboardWebSocketTests",
            dependencies: [
                "SwitchboardLocks",
                "Switchboard",
                "SwitchboardTesting",
                "SwitchboardDemos",
                "SwitchboardServer",
                "SwitchboardWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SwitchboardTopicsTests",
            dependencies: [
                "Switchboard",
                "SwitchboardTesting",
                "SwitchboardLocks",
                "SwitchboardTopics",
                "SwitchboardPubSub",
                "SwitchboardRedis",
                "SwitchboardWebSocket",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SwitchboardRoomsTests",
            dependencies: [
                "SwitchboardLocks",
                "SwitchboardRooms",
                "SwitchboardTopics",
                "SwitchboardWebSocket",
                "SwitchboardAuth",
                "SwitchboardPubSub",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SwitchboardHTTPClientTests",
            dependencies: [
                "Switchboard",
                "SwitchboardHTTPClient",
                "SwitchboardLocks",
                "SwitchboardTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "SwitchboardJSONTests", dependencies: ["SwitchboardJSON"], swiftSettings: strictSettings),
        // The node end to end: the chat's endpoints on a live server (embedded and on a real redis-server), the
        // configuration and the service order.
        .testTarget(
            name: "SwitchboardNodeTests",
            dependencies: [
                "SwitchboardHTTPClient",
                "SwitchboardWebhooks",
                "SwitchboardLocks",
                "Switchboard",
                "SwitchboardServer",
                "SwitchboardTesting",
                "SwitchboardNode",
                "SwitchboardRooms",
                "SwitchboardRoomsRedis",
                "SwitchboardApi",
                "SwitchboardTopics",
                "SwitchboardPubSub",
                "SwitchboardRedis",
                "SwitchboardWebSocket",
                "SwitchboardAuth",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SwitchboardWebhooksTests",
            dependencies: [
                "SwitchboardHTTPClient",
                "Switchboard",
                "SwitchboardApi",
                "SwitchboardNode",
                "SwitchboardRooms",
                "SwitchboardWebhooks",
                "SwitchboardRedis",
                "SwitchboardRoomsRedis",
                "SwitchboardLocks",
                "SwitchboardPubSub",
                "SwitchboardTopics",
                "SwitchboardTesting",
                "SwitchboardAuth",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SwitchboardMetricsTests",
            dependencies: [
                "SwitchboardHTTPClient",
                "Switchboard",
                "SwitchboardTesting",
                "SwitchboardMetrics",
                "SwitchboardNode",
                "SwitchboardApi",
                "SwitchboardRooms",
                "SwitchboardTopics",
                "SwitchboardPubSub",
                "SwitchboardWebhooks",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SwitchboardPubSubTests",
            dependencies: [
                "SwitchboardLocks",
                "SwitchboardPubSub",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SwitchboardRedisTests",
            dependencies: [
                "SwitchboardLocks",
                "SwitchboardRedis",
                "SwitchboardTesting",
                "SwitchboardPubSub",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTestUtils", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SwitchboardServerTests",
            dependencies: [
                "SwitchboardLocks",
                "Switchboard",
                "SwitchboardTesting",
                "SwitchboardServer",
                "SwitchboardDemos",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)

// libFuzzer targets for the parsers that face peers (Fuzz/README.md). Declared only when SWITCHBOARD_FUZZ=1, since
// they link only with `-sanitize=fuzzer` (libFuzzer supplies `main`): `Fuzz/run.sh` builds and runs them.
if Context.environment["SWITCHBOARD_FUZZ"] == "1" {
    let fuzzTargets: [(String, [Target.Dependency])] = [
        (
            "FuzzWebSocketFrames",
            [
                "SwitchboardWebSocket", .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        (
            "FuzzHTTPRequestHead",
            [
                "Switchboard", "SwitchboardServer", "SwitchboardWebSocket",
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        ("FuzzRESPDecoder", ["SwitchboardRedis", .product(name: "NIOCore", package: "swift-nio")]),
        ("FuzzRedisURL", ["SwitchboardRedis"]),
        (
            "FuzzRoomsCommands",
            ["SwitchboardRooms", "SwitchboardAuth", .product(name: "NIOCore", package: "swift-nio")]
        ),
        ("FuzzApiJSON", ["SwitchboardApi", "SwitchboardJSON"]),
        ("FuzzConfigFile", ["SwitchboardNode"]),
    ]
    package.targets += fuzzTargets.map { name, dependencies in
        .executableTarget(name: name, dependencies: dependencies, path: "Fuzz/\(name)")
    }
}
