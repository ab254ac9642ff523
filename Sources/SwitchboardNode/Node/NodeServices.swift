import Logging
import NIOCore
import ServiceLifecycle
import SwitchboardRedis
import SwitchboardServer
import UnixSignals

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Prints the URL to open once a server listens.
struct Announcer: Service {
    let server: Server
    let name: String
    var path = ""

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

/// Says once, at start-up, whether Redis answers: an operator should see at once that a node serves only its own
/// clients. The connections themselves are services of their own.
struct RedisStartupReport: Service {
    let broker: any RedisFanOut
    let description: String
    let logger: Logger

    func run() async throws {
        if await self.broker.waitUntilConnected(timeout: .seconds(2)) {
            self.logger.info("Fan-out through Redis", metadata: ["redis": "\(self.description)"])
        } else if !Task.isShuttingDownGracefully {
            let reason = await self.broker.unreadiness(timeout: .seconds(1)) ?? ""
            self.logger.warning(
                "Redis is unreachable: serving local clients only and retrying in the background",
                metadata: ["redis": "\(self.description)", "reason": "\(reason)"]
            )
        }
        // Ends on its turn in the shutdown, never while another service is shutting down (a SIGTERM within the
        // first 2 s with Redis unreachable made the whole group fail with serviceFinishedUnexpectedly).
        try? await gracefulShutdown()
    }
}

/// Reads the certificate and key again on each SIGHUP (certbot's deploy hook, `systemctl reload`): new connections
/// get the new certificate; a reload that fails is logged and the certificate in use stays.
struct TLSReloader: Service {
    let credentials: TLSCredentials
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            do {
                try self.credentials.reload()
                self.logger.notice(
                    "TLS certificate reloaded", metadata: ["certificate": "\(self.credentials.certificateChainPath)"])
            } catch {
                self.logger.error("TLS certificate not reloaded; the one in use stays", metadata: ["error": "\(error)"])
            }
        }
    }
}
