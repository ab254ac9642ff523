import ArgumentParser
import Logging
import NIOCore
import ServiceLifecycle
import Switchboard
import SwitchboardServer
import UnixSignals

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs `application` until SIGINT or SIGTERM, printing where it listens; turns start-up failures into
/// one clear line and exit code 1.
func runServer(_ application: some Application, options: ServerOptions, name: String) async throws {
    let level = options.logLevel
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    let logger = Logger(label: "switchboard")
    // One event loop per core this process may use (affinity-aware, unlike NIO's default count). It lives as long
    // as the process.
    let server = Server(
        application: application,
        configuration: ServerConfiguration(host: options.host, port: options.port),
        eventLoopGroup: Server.makeEventLoopGroup(),
        logger: logger
    )
    let announcer = Announcer(server: server, name: name, logger: logger)
    let group = ServiceGroup(
        configuration: ServiceGroupConfiguration(
            services: [
                .init(service: server),
                .init(service: announcer, successTerminationBehavior: .ignore),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger
        )
    )
    do {
        try await group.run()
    } catch let error as IOError where error.errnoCode == EADDRINUSE {
        printError("switchboard: cannot listen on \(options.host):\(options.port): the address is already in use")
        throw ExitCode(1)
    } catch let error as IOError {
        printError("switchboard: cannot listen on \(options.host):\(options.port): \(error)")
        throw ExitCode(1)
    }
}

/// Prints the URL to open once the server listens.
struct Announcer: Service {
    let server: Server
    let name: String
    let logger: Logger

    func run() async throws {
        guard let address = try? await self.server.listeningAddress() else { return }
        let host = address.ipAddress.map { address.protocol == .inet6 ? "[\($0)]" : $0 } ?? "?"
        print("\(self.name) listening on http://\(host):\(address.port ?? 0)/")
    }
}

/// Writes `message` and a newline to standard error.
func printError(_ message: String) {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}
