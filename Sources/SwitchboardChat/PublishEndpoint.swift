import HTTPTypes
import Logging
import NIOCore
import Switchboard
import SwitchboardTopics
import SwitchboardWebSocket

/// `POST /publish/{channel}`: server-side notifications to every subscriber of a channel on every node.
struct PublishEndpoint: Sendable {
    let topics: Topics
    let configuration: ChatConfiguration
    let logger: Logger

    func respond(to request: Request) async throws -> Response {
        guard let token = self.configuration.publishToken else {
            throw HTTPError(.notFound, "the publish API is off: start the server with --publish-token")
        }
        guard let presented = Self.bearerToken(request), Self.constantTimeEqual(presented, token) else {
            throw HTTPError(
                .unauthorized, "a valid Authorization: Bearer <token> is required",
                headers: [.wwwAuthenticate: "Bearer"])
        }
        let channel = request.parameters["channel"] ?? ""
        guard ChannelName.isValid(channel) else {
            throw HTTPError(.badRequest, "invalid channel name: 1 to 128 of A-Z a-z 0-9 - _ . :")
        }
        // collect(upTo:) answers 413 for a larger body.
        let body = try await request.body.collect(upTo: self.configuration.maxPublishSize)
        guard body.readableBytes > 0 else { throw HTTPError(.badRequest, "the message is empty") }
        guard WebSocketMessage.text(validating: body) != nil else {
            throw HTTPError(.unsupportedMediaType, "the message must be UTF-8 text or JSON")
        }
        do {
            try await self.topics.publish(body, to: channel)
        } catch {
            self.logger.warning("Publish failed", metadata: ["channel": "\(channel)", "error": "\(error)"])
            throw HTTPError(.serviceUnavailable, "the message broker is unavailable: \(error)")
        }
        return Response(status: .noContent)
    }

    private static func bearerToken(_ request: Request) -> String? {
        guard let value = request.headers[.authorization] else { return nil }
        let parts = value.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return nil }
        let token = parts[1].trimmingHTTPWhitespace()
        return token.isEmpty ? nil : String(token)
    }

    /// Compares without stopping at the first difference, so response times do not reveal the token.
    private static func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
        let a = Array(lhs.utf8)
        let b = Array(rhs.utf8)
        var difference = UInt8(a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }
}
