public import Logging
import ServiceLifecycle
public import Switchboard
import SwitchboardServer
import UnixSignals

extension Node {
    /// Serves `application` alone (no chat, no broker) with `settings`' address, limits, TLS and shutdown timeout,
    /// until SIGTERM or SIGINT: for apps and demos that are not a chat node (`switchboard hijack-demo`).
    ///
    /// - Throws: ``NodeError`` for TLS files that cannot be used; the server's error when it cannot listen.
    public static func serve(
        _ application: some Application, settings: ServerSettings, name: String, logger: Logger
    ) async throws {
        var configuration = NodeConfiguration()
        configuration.server = settings
        let tls = try configuration.tlsCredentials()
        let server = Server(
            application: application, configuration: configuration.serverConfiguration(tls: tls),
            eventLoopGroup: Server.makeEventLoopGroup(), logger: logger)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let tls { services.append(.init(service: TLSReloader(credentials: tls, logger: logger))) }
        services += [
            .init(service: server),
            .init(service: Announcer(server: server, name: name), successTerminationBehavior: .ignore),
        ]
        var group = ServiceGroupConfiguration(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        group.maximumGracefulShutdownDuration = .seconds(settings.shutdownTimeout)
        try await ServiceGroup(configuration: group).run()
    }
}
