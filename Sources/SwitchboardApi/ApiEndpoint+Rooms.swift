import HTTPTypes
import Logging
import Switchboard
import SwitchboardRooms

/// `GET /api/v1/rooms/{room}/history` and `…/presence`: read from the stores every node shares (Redis), or this
/// node's memory with the embedded broker.
extension ApiEndpoint {
    /// The most messages one history request returns.
    static let maxHistoryLimit = 1000

    func history(_ request: Request) async throws -> Response {
        let room = try self.room(of: request, for: .history)
        let since = request.queryValue("since")
        if let since, since.isEmpty || since.utf8.count > 64 || !since.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) {
            throw ApiError(.badRequest, "invalid_since", "since is a message id: 1 to 64 visible ASCII characters")
        }
        var limit = 100
        if let text = request.queryValue("limit") {
            guard let value = Int(text), (1...Self.maxHistoryLimit).contains(value) else {
                throw ApiError(.badRequest, "invalid_limit", "limit is 1 to \(Self.maxHistoryLimit)")
            }
            limit = value
        }
        do {
            let page = try await self.log.history(of: room, since: since, limit: limit)
            // Without `since` (or past a gap) the log gives the page a join shows: its last `limit` messages.
            let messages = since == nil || page.gap ? Array(page.messages.suffix(limit)) : page.messages
            return ApiJSON.response(HistoryReply(room: room, messages: messages, gap: page.gap, more: page.more))
        } catch {
            throw self.storeUnavailable("Reading a room's history failed", error)
        }
    }

    func presence(_ request: Request) async throws -> Response {
        let room = try self.room(of: request, for: .presence)
        do {
            let members = try await self.presence.members(of: room)
            return ApiJSON.response(PresenceReply(room: room, members: members, users: PresenceUser.of(members)))
        } catch {
            throw self.storeUnavailable("Reading a room's presence failed", error)
        }
    }

    /// The request's room, checked, and that its key may do `operation` on the room's channel.
    func room(of request: Request, for operation: ApiOperation) throws -> String {
        let key = try self.authorize(request, for: operation)
        let room = request.parameters["room"] ?? ""
        guard ChatNames.isValidRoom(room) else {
            throw ApiError(.badRequest, "invalid_room", "a room is 1 to 64 of A-Z a-z 0-9 - _ .")
        }
        guard key.covers(RoomChannel.name(of: room)) else {
            throw ApiError(
                .forbidden, "forbidden",
                "the key \(key.name) may not \(operation.rawValue) \(RoomChannel.name(of: room))")
        }
        return room
    }

    private func storeUnavailable(_ what: String, _ error: any Error) -> ApiError {
        self.logger.warning("\(what)", metadata: ["error": "\(error)"])
        return ApiError(.serviceUnavailable, "unavailable", "the store is unavailable: \(error)")
    }
}
