import ArgumentParser

/// Where `GET /metrics` is served.
struct MetricsOptions: ParsableArguments {
    @Option(
        help: """
            Serve Prometheus metrics at http://<metrics-host>:<port>/metrics, a port apart from the public one \
            (env SWITCHBOARD_METRICS_PORT; default: no metrics, and none recorded).
            """
    )
    var metricsPort: Int?

    @Option(help: "The address the metrics port listens on (env SWITCHBOARD_METRICS_HOST; default 127.0.0.1).")
    var metricsHost: String?

    /// The metrics port from the flag or the environment; `nil` for no metrics.
    var resolvedPort: Int? {
        if let port = self.metricsPort { return port }
        guard let text = configured("SWITCHBOARD_METRICS_PORT") else { return nil }
        guard let port = Int(text), (0...65535).contains(port) else {
            exitWithUsageError("SWITCHBOARD_METRICS_PORT must be a port number, not \(text.debugDescription)")
        }
        return port
    }

    /// The metrics address, from the flag, the environment or the default.
    var resolvedHost: String { self.metricsHost ?? configured("SWITCHBOARD_METRICS_HOST") ?? "127.0.0.1" }

    func validate() throws {
        if let port = self.metricsPort, !(0...65535).contains(port) {
            throw ValidationError("--metrics-port must be between 0 and 65535, not \(port)")
        }
    }
}
