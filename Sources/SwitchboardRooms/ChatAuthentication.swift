package import NIOCore
package import SwitchboardAuth
package import SwitchboardWebSocket

/// Who may connect, as whom, and to which rooms and channels (docs/SECURITY.md; docs/PROTOCOL.md, `auth`).
package struct ChatAuthentication: Sendable {
    /// Verifies connection tokens; `nil` when no key is configured (tokens cannot be used then).
    package var verifier: TokenVerifier?
    /// Sockets without a token may connect, choose a nickname and join public rooms. The default when no key is
    /// configured, so `swift run switchboard` just works; with a key, an explicit choice (`--allow-anonymous`).
    package var allowsAnonymous: Bool
    /// Rooms only users whose token lists them (its `rooms` claim) may join; anonymous sockets never may.
    package var privateRooms: [ChannelPattern]
    /// How long a socket that must authenticate has to send `auth` after the 101.
    package var authTimeout: TimeAmount
    /// How long before its token's `exp` a socket is asked for a fresh one (`refresh`).
    package var refreshAhead: TimeAmount

    /// Creates the settings; anonymous access is on exactly when there is no verifier, unless said otherwise.
    package init(
        verifier: TokenVerifier? = nil,
        allowsAnonymous: Bool? = nil,
        privateRooms: [ChannelPattern] = [],
        authTimeout: TimeAmount = .seconds(10),
        refreshAhead: TimeAmount = .seconds(60)
    ) {
        self.verifier = verifier
        self.allowsAnonymous = allowsAnonymous ?? (verifier == nil)
        self.privateRooms = privateRooms
        self.authTimeout = authTimeout
        self.refreshAhead = refreshAhead
    }

    /// `required`, `optional` or `off`: what `welcome` tells clients.
    package var mode: String {
        guard self.verifier != nil else { return "off" }
        return self.allowsAnonymous ? "optional" : "required"
    }

    /// Whether `identity` (`nil`: anonymous) may join `room`.
    package func mayJoin(_ room: String, as identity: Identity?) -> Bool {
        guard self.privateRooms.contains(where: { $0.matches(room) }) else { return true }
        return identity?.mayJoin(room) ?? false
    }
}

/// Close codes of the identity layer (PROTOCOL.md): in the 4000–4999 range that RFC 6455 leaves to applications.
extension WebSocketCloseCode {
    /// No valid token in time, or the first token was refused.
    package static let unauthorized = WebSocketCloseCode(rawValue: 4001)
    /// The token expired and no fresh one came.
    package static let tokenExpired = WebSocketCloseCode(rawValue: 4002)
    /// A refresh named another user.
    package static let identityChanged = WebSocketCloseCode(rawValue: 4003)
    /// The user has as many sockets open on the node as allowed.
    package static let tooManyConnections = WebSocketCloseCode(rawValue: 4005)
    /// Requests went on past their rate limit.
    package static let rateLimited = WebSocketCloseCode(rawValue: 4008)
}
