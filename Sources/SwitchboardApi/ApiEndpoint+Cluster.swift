import FoundationEssentials
import HTTPTypes
import Logging
import NIOCore
import Switchboard
import SwitchboardAuth
import SwitchboardRooms
import SwitchboardTopics
import SwitchboardWebSocket

/// `GET /api/v1/info`, `GET /api/v1/channels`, `POST /api/v1/users/{id}/disconnect` and `…/unsubscribe`: every
/// node is asked through the node's ``ClusterSurvey``.
extension ApiEndpoint {
    func info(_ request: Request) async throws -> Response {
        let key = try self.authorize(request, for: .info)
        // Every node's sockets, channels and users are no one channel's business: a key for all of them only.
        guard key.coversEverything else {
            throw ApiError(.forbidden, "forbidden", "the key \(key.name) may not read info: it needs the pattern *")
        }
        let answers = try await self.ask(ClusterRequest(op: "info"))
        let nodes = answers.replies.map(\.node).sorted { $0.node < $1.node }
        return ApiJSON.response(InfoReply(nodes: nodes, partial: answers.partial))
    }

    func channels(_ request: Request) async throws -> Response {
        let key = try self.authorize(request, for: .channels)
        let filter = try request.queryValue("pattern").map { text in
            guard ChannelName.isName(text, maxLength: 128, alsoAllowing: UInt8(ascii: ":"), UInt8(ascii: "*")),
                let pattern = ChannelPattern(text)
            else {
                throw ApiError(
                    .badRequest, "invalid_pattern",
                    "a pattern is 1 to 128 of A-Z a-z 0-9 - _ . : and *, which matches any run")
            }
            return pattern
        }
        let answers = try await self.ask(ClusterRequest(op: "channels"))
        var totals: [String: Int] = [:]
        for reply in answers.replies {
            for (channel, count) in reply.channels ?? [:] { totals[channel, default: 0] += count }
        }
        let channels = totals.filter { channel, _ in
            key.covers(channel) && (filter?.matches(channel) ?? true)
        }.map { ChannelsReply.Channel(channel: $0.key, subscribers: $0.value) }.sorted { $0.channel < $1.channel }
        return ApiJSON.response(
            ChannelsReply(channels: channels, nodes: answers.replies.count, partial: answers.partial))
    }

    func disconnect(_ request: Request) async throws -> Response {
        let key = try self.authorize(request, for: .disconnect)
        let user = try Self.user(of: request)
        try Self.check(key, mayActOn: user)
        let body = try await self.decode(DisconnectRequest.self, from: request, emptyAs: DisconnectRequest())
        let code = body.code ?? 4000
        guard code == 1000 || (3000...4999).contains(code) else {
            throw ApiError(.badRequest, "invalid_code", "a close code is 1000 or 3000 to 4999")
        }
        // A close frame carries at most 123 bytes of reason: a longer one is cut at a character boundary.
        var reason = Substring(body.reason ?? "disconnected by the server")
        while reason.utf8.count > 123 { reason = reason.dropLast() }
        let answers = try await self.ask(
            ClusterRequest(op: "disconnect", user: user, code: code, reason: String(reason)))
        self.logger.notice(
            "Disconnected a user through the server API",
            metadata: ["user": "\(user)", "sockets": "\(answers.replies.reduce(0) { $0 + ($1.count ?? 0) })"])
        return ApiJSON.response(
            UserActionReply(
                disconnected: answers.replies.reduce(0) { $0 + ($1.count ?? 0) }, nodes: answers.replies.count,
                partial: answers.partial))
    }

    func unsubscribe(_ request: Request) async throws -> Response {
        let key = try self.authorize(request, for: .unsubscribe)
        let user = try Self.user(of: request)
        try Self.check(key, mayActOn: user)
        let body = try await self.decode(UnsubscribeRequest.self, from: request)
        guard ChatNames.isValidRoom(body.room) else {
            throw ApiError(.badRequest, "invalid_room", "a room is 1 to 64 of A-Z a-z 0-9 - _ .")
        }
        guard key.covers(RoomChannel.name(of: body.room)) else {
            throw ApiError(.forbidden, "forbidden", "the key \(key.name) may not unsubscribe from \(body.room)")
        }
        let answers = try await self.ask(ClusterRequest(op: "unsubscribe", user: user, room: body.room))
        return ApiJSON.response(
            UserActionReply(
                unsubscribed: answers.replies.reduce(0) { $0 + ($1.count ?? 0) }, nodes: answers.replies.count,
                partial: answers.partial))
    }

    /// A key acts on a user's sockets only if it names the user's channel (`user:<id>`, `user:*`, `*`).
    private static func check(_ key: ApiKey, mayActOn user: String) throws {
        guard key.covers("user:\(user)") else {
            throw ApiError(
                .forbidden, "forbidden",
                "the key \(key.name) may not act on user \(user): it needs the pattern user:\(user)")
        }
    }

    /// The `{user}` of the path: a token's user id.
    private static func user(of request: Request) throws -> String {
        let user = request.parameters["user"] ?? ""
        guard IdentityNames.isValidUserID(user) else {
            throw ApiError(.badRequest, "invalid_user", "a user id is 1 to 128 of A-Z a-z 0-9 - _ . @ |")
        }
        return user
    }

    /// Every node's reply to `request` (those in by the deadline), and whether some node did not answer.
    private func ask(_ request: ClusterRequest) async throws -> (replies: [ClusterReply], partial: Bool) {
        do {
            guard let survey = self.survey else { throw ApiSurveyMissing() }
            let answers = try await survey.ask(ByteBuffer(bytes: try JSONEncoder().encode(request)))
            let replies = answers.answers.compactMap { answer in
                try? JSONDecoder().decode(ClusterReply.self, from: Data(answer.readableBytesView))
            }
            return (replies, answers.partial || replies.count < answers.answers.count)
        } catch {
            self.logger.warning("Asking the nodes failed", metadata: ["error": "\(error)"])
            throw ApiError(.serviceUnavailable, "unavailable", "the message broker is unavailable: \(error)")
        }
    }
}

/// The node runs no cluster survey.
private struct ApiSurveyMissing: Error, CustomStringConvertible {
    var description: String { "no cluster survey runs on this node" }
}
