import ArgumentParser
import Logging
import NIOCore
import ServiceLifecycle
import Switchboard
import SwitchboardMetrics
import SwitchboardRedis
import SwitchboardServer
import UnixSignals

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs the application `make` returns (with the services it needs, such as a Redis broker) until SIGINT or
/// SIGTERM, printing where it listens; turns start-up failures into one clear line and exit code 1.
///
/// With `metrics` giving a port, a ``MetricsExporter`` is made first (`make` hands it to what records into it) and
/// served at `/metrics` on that port by a second server.
func runServer<App: Application>(
    options: ServerOptions,
    metrics: MetricsOptions? = nil,
    name: String,
    make: (any EventLoopGroup, Logger, MetricsExporter?) -> (App, [ServiceGroupConfiguration.ServiceConfiguration])
) async throws {
    let level = options.resolvedLogLevel
    let json = options.resolvedLogFormat == "json"
    LoggingSystem.bootstrap { label in
        if json { return JSONLogHandler(label: label, logLevel: level) }
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    let logger = Logger(label: "switchboard")
    raiseOpenFileLimit(logger: logger)
    // One event loop per core this process may use (affinity-aware, unlike NIO's default count). It lives as long
    // as the process.
    let eventLoopGroup = Server.makeEventLoopGroup()
    let metricsPort = metrics?.resolvedPort
    let exporter = metricsPort == nil ? nil : MetricsExporter()
    let tls = options.tls.credentials()
    let (application, services) = make(eventLoopGroup, logger, exporter)
    let host = options.resolvedHost
    let port = options.resolvedPort
    let server = Server(
        application: application,
        configuration: ServerConfiguration(
            host: host, port: port, maxConnections: options.resolvedMaxConnections,
            maxConnectionsPerAddress: options.resolvedMaxConnectionsPerIP,
            connectionRatePerAddress: options.resolvedConnectionRatePerIP, tls: tls,
            trustedProxies: options.resolvedTrustedProxies),
        eventLoopGroup: eventLoopGroup,
        logger: logger
    )
    let announcer = Announcer(server: server, name: name, logger: logger)
    var metricsServices: [ServiceGroupConfiguration.ServiceConfiguration] = []
    if let tls { metricsServices.append(.init(service: TLSReloader(credentials: tls, logger: logger))) }
    if let exporter, let metricsPort, let metrics {
        exporter.observe(server: server)
        let metricsServer = Server(
            application: MetricsEndpoint(exporter: exporter),
            configuration: ServerConfiguration(host: metrics.resolvedHost, port: metricsPort, maxConnections: 64),
            eventLoopGroup: eventLoopGroup,
            logger: logger
        )
        metricsServices = [
            .init(service: metricsServer),
            .init(
                service: Announcer(server: metricsServer, name: "Metrics", path: "metrics", logger: logger),
                successTerminationBehavior: .ignore),
        ]
    }
    var groupConfiguration = ServiceGroupConfiguration(
        services: services + metricsServices + [
            .init(service: server),
            .init(service: announcer, successTerminationBehavior: .ignore),
        ],
        gracefulShutdownSignals: [.sigterm, .sigint],
        logger: logger
    )
    // Past the deadline, graceful shutdown becomes cancellation: the server closes every connection left.
    groupConfiguration.maximumGracefulShutdownDuration = .seconds(options.resolvedShutdownTimeout)
    let group = ServiceGroup(configuration: groupConfiguration)
    do {
        try await group.run()
    } catch let error as IOError where error.errnoCode == EADDRINUSE {
        printError("switchboard: cannot listen on \(host):\(port): the address is already in use")
        throw ExitCode(1)
    } catch let error as IOError {
        printError("switchboard: cannot listen on \(host):\(port): \(error)")
        throw ExitCode(1)
    }
}

/// Prints the URL to open once the server listens.
struct Announcer: Service {
    let server: Server
    let name: String
    var path = ""
    let logger: Logger

    func run() async throws {
        if let address = try? await self.server.listeningAddress() {
            let host = address.ipAddress.map { address.protocol == .inet6 ? "[\($0)]" : $0 } ?? "?"
            // Written straight to the file descriptor: `print` is block-buffered when standard output is a pipe or a
            // file (systemd, docker logs), so the line would only appear at exit.
            let scheme = self.server.isTLS ? "https" : "http"
            let line = "\(self.name) listening on \(scheme)://\(host):\(address.port ?? 0)/\(self.path)\n"
            _ = line.withCString { write(1, $0, strlen($0)) }
        }
        // Finished only when its turn to shut down comes: ServiceLifecycle fails the whole group when a service ends
        // while another one is being shut down.
        try? await gracefulShutdown()
    }
}

/// Raises the soft open-file limit to the hard one, as Go's runtime does: each connection is a descriptor, and a
/// distribution's default soft limit (1,024 under systemd) would cap a server far below what it can hold. The
/// server's default connection cap follows the limit this leaves.
func raiseOpenFileLimit(logger: Logger) {
    #if canImport(Glibc)
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        let soft = limit.rlim_cur
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            logger.info(
                "Open-file limit raised to the hard limit", metadata: ["from": "\(soft)", "to": "\(limit.rlim_max)"])
        }
    #endif
}

/// Writes `message` and a newline to standard error.
func printError(_ message: String) {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

/// Says once, at start-up, whether Redis answers: an operator should see at once that a node serves only its own
/// clients. The connections themselves are services of their own.
struct RedisStartupReport: Service {
    let broker: RedisBroker
    let configuration: RedisConfiguration
    let logger: Logger

    func run() async throws {
        if await self.broker.waitUntilConnected(timeout: .seconds(2)) {
            self.logger.info("Fan-out through Redis", metadata: ["redis": "\(self.configuration)"])
        } else if !Task.isShuttingDownGracefully {
            self.logger.warning(
                "Redis is unreachable: serving local clients only and retrying in the background",
                metadata: ["redis": "\(self.configuration)"]
            )
        }
        // Ends on its turn in the shutdown, never while another service is shutting down (a SIGTERM within the
        // first 2 s with Redis unreachable made the whole group fail with serviceFinishedUnexpectedly).
        try? await gracefulShutdown()
    }
}
