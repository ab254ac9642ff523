import HTTPTypes
import NIOCore
package import Switchboard
package import SwitchboardServer

/// `GET /metrics`: the exporter's text, for Prometheus to scrape. Served on a port of its own (`--metrics-port`),
/// which an operator keeps off the internet, rather than beside the chat on the public one.
package struct MetricsEndpoint: Application {
    let exporter: MetricsExporter

    package init(exporter: MetricsExporter) {
        self.exporter = exporter
    }

    /// The metrics port's server: few connections, each idle for 5 s at most (Prometheus opens one per scrape
    /// interval, or keeps one alive between scrapes), so connections that send nothing cannot hold the port.
    package static func serverConfiguration(host: String, port: Int) -> ServerConfiguration {
        ServerConfiguration(
            host: host, port: port, idleTimeout: .seconds(5), headReadTimeout: .seconds(5), maxConnections: 64)
    }

    package func respond(to request: Request) async throws -> Response {
        guard request.path == "/metrics" else {
            throw HTTPError(.notFound, "metrics are at /metrics")
        }
        guard request.method == .get || request.method == .head else {
            throw HTTPError(.methodNotAllowed, headers: [.allow: "GET, HEAD"])
        }
        let text = await self.exporter.render()
        return Response(
            headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
            body: .init(buffer: ByteBuffer(bytes: text)))
    }
}
