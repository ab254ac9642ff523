// swift-tools-version:6.1
import PackageDescription

// Micro benchmarks of the hot paths, apart from the main package so its build never pulls in the benchmark harness:
// `swift package --package-path Benchmarks benchmark` (docs/DEVELOPMENT.md). Macro benchmarks against peers are the
// perf harness's (../shared/tools/perf).
let package = Package(
    name: "SwitchboardBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        // Named: a path dependency is otherwise known by its folder's name, which is the clone's.
        .package(name: "Switchboard", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "SwitchboardBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "SwitchboardRedis", package: "Switchboard"),
                .product(name: "SwitchboardJSON", package: "Switchboard"),
                .product(name: "SwitchboardTopics", package: "Switchboard"),
                .product(name: "SwitchboardPubSub", package: "Switchboard"),
                .product(name: "SwitchboardWebSocket", package: "Switchboard"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/SwitchboardBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
