import HTTPTypes
import NIOCore
package import Switchboard

/// `GET /metrics`: the exporter's text, for Prometheus to scrape. Served on a port of its own (`--metrics-port`),
/// which an operator keeps off the internet, rather than beside the chat on the public one.
package struct MetricsEndpoint: Application {
    let exporter: MetricsExporter

    package init(exporter: MetricsExporter) {
        self.exporter = exporter
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
