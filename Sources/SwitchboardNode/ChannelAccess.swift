import HTTPTypes
import Switchboard
import SwitchboardApi
import SwitchboardAuth
import SwitchboardRooms

/// Who may read which channel on `/subscribe/{channel}` and `/chat`, and where their tokens travel there.
///
/// - `room:<name>` channels are never readable here: rooms are read through `/ws`, where members see who is in
///   the room (reading them here would be invisible).
/// - `switchboard:…` channels are the nodes' own (the server API's requests between nodes): never readable.
/// - `user:<id>` channels are readable only by that user, with a token: `POST /publish/user:42` reaches every
///   socket of user 42 on every node.
/// - Other channels are public, unless tokens are required (no anonymous access): then any valid token will do.
///
/// The token travels in `Authorization: Bearer <token>` (servers, native apps) or, from a browser, which cannot set
/// headers on a WebSocket, as an offered subprotocol `bearer.<token>` beside `switchboard.v1`, which the server
/// selects (the token itself is never echoed). Not in the URL, which access logs keep.
struct ChannelAccess: Sendable {
    let auth: ChatAuthentication
    let counters: ChatCounters

    /// The subprotocol a browser offers beside its `bearer.<token>`.
    static let subprotocol = "switchboard.v1"

    /// Checks that `request` may read `channel`; throws the HTTP error to answer otherwise.
    ///
    /// - Returns: The identity its token proved, if it needed one.
    @discardableResult
    func checkRead(_ channel: String, _ request: Request) async throws -> Identity? {
        if ChannelName.isReserved(channel) {
            self.counters.count(.joinForbidden)
            throw HTTPError(.forbidden, "switchboard: channels are the nodes' own")
        }
        if channel.hasPrefix("room:") {
            self.counters.count(.joinForbidden)
            throw HTTPError(.forbidden, "room channels are read through /ws, where the room's members see who is in it")
        }
        let userChannel = channel.hasPrefix("user:") ? String(channel.dropFirst(5)) : nil
        guard userChannel != nil || !self.auth.allowsAnonymous else { return nil }
        let identity = try await self.identity(of: request)
        if let owner = userChannel, identity.userID != owner {
            self.counters.count(.joinForbidden)
            throw HTTPError(.forbidden, "user:\(owner) is readable only by that user")
        }
        return identity
    }

    /// The identity the request's token proves; throws 401 without a valid one.
    func identity(of request: Request) async throws -> Identity {
        guard let verifier = self.auth.verifier else {
            throw HTTPError(.forbidden, "this server has no token key configured, so user channels are closed")
        }
        guard let token = request.bearerToken else {
            self.counters.count(.authRefused)
            throw HTTPError(
                .unauthorized, "a token is required: Authorization: Bearer <token>, or the subprotocol bearer.<token>",
                headers: [.wwwAuthenticate: "Bearer"])
        }
        do {
            return try await verifier.verify(token)
        } catch {
            self.counters.count(.authRefused)
            throw HTTPError(.unauthorized, "\(error)", headers: [.wwwAuthenticate: "Bearer error=\"invalid_token\""])
        }
    }
}
