import FoundationEssentials
import Logging
import NIOCore
import SwitchboardAuth
import SwitchboardWebSocket

/// `auth`: a token verified off the loop, adopted the first time, extending the socket's life on a refresh.
extension RoomSessionMachine {
    mutating func authenticate(_ token: String?, ref: String?, now: UInt64, into actions: inout [Action]) {
        guard self.settings.auth.verifier != nil else {
            return actions.append(.send(.error("auth_off", "this server has no token key configured", ref: ref)))
        }
        guard let token, !token.isEmpty else {
            return actions.append(.send(.error("token_malformed", "auth needs a token", ref: ref)))
        }
        guard self.verifying == nil else {
            return actions.append(.send(.error("auth_pending", "a token is being verified already", ref: ref)))
        }
        // Each token is a signature to verify: a socket gets a few, then one now and then.
        let wait = self.rate.auth.take(now: now)
        guard self.allowed(wait, "token verifications", room: nil, ref: ref, into: &actions) else { return }
        self.verifications += 1
        self.verifying = self.verifications
        self.verifyingRef = ref
        actions.append(.verify(token: token, attempt: self.verifications))
    }

    mutating func verified(
        attempt: Int, _ result: Result<Identity, TokenError>, now: UInt64, directory: some RoomSessionDirectory,
        into actions: inout [Action]
    ) {
        guard self.verifying == attempt else { return }
        self.verifying = nil
        let ref = self.verifyingRef
        switch result {
        case .failure(let error):
            actions.append(.count(.authRefused))
            actions.append(.send(.error(error.code.rawValue, error.message, ref: ref)))
            self.refuse(into: &actions)
            // A refused refresh leaves the socket as it was, until its token expires; a refused first token (when
            // tokens are required) ends it.
            if self.identity == nil, !self.settings.auth.allowsAnonymous {
                actions.append(.close(.unauthorized, reason: error.code.rawValue))
            }
        case .success(let identity):
            self.accept(identity, ref: ref, now: now, directory: directory, into: &actions)
        }
        // What the client sent meanwhile runs now, as the user the token proved (or anonymously, or refused).
        self.replayHeld(now: now, directory: directory, into: &actions)
    }

    /// Takes `identity` (from a token, or the connect hook) for this socket.
    mutating func accept(
        _ identity: Identity, ref: String?, now: UInt64, directory: some RoomSessionDirectory,
        into actions: inout [Action]
    ) {
        if let current = self.identity {
            guard current.userID == identity.userID else {
                actions.append(.send(.error("identity_changed", "a refresh must be for the same user", ref: ref)))
                return actions.append(.close(.identityChanged, reason: "a refresh named another user"))
            }
        } else if !self.rooms.isEmpty {
            return actions.append(
                .send(.error("auth_after_join", "authenticate before joining rooms (or on a new socket)", ref: ref)))
        }
        if self.countedUser == nil {
            guard directory.admit(user: identity.userID, now: now) else {
                actions.append(.count(.rateLimited))
                actions.append(
                    .send(.error("too_many_connections", "this user has as many sockets open as allowed", ref: ref)))
                return actions.append(.close(.tooManyConnections, reason: "too many connections for this user"))
            }
            self.countedUser = identity.userID
        }
        self.adopt(identity, into: &actions)
        if !self.reportedOpen {
            self.reportedOpen = true
            actions.append(.socketOpened(self.presenceMember))
        }
        actions.append(
            .send(
                .authenticated(
                    AuthenticatedFrame(
                        you: self.presenceMember, expiresAt: identity.expiresAt.map(Self.milliseconds), ref: ref))))
        // A refreshed token that no longer lists a members-only room the socket is in takes it out of the room.
        for room in self.rooms.keys.sorted() where !self.settings.auth.mayJoin(room, as: identity) {
            self.removeRoom(room, directory: directory, into: &actions)
            actions.append(.send(.unsubscribed(UnsubscribedFrame(room: room, reason: "revoked"))))
        }
    }

    /// Takes `identity` for this socket: its name replaces the nickname; the expiry timers start over.
    private mutating func adopt(_ identity: Identity, into actions: inout [Action]) {
        let previous = self.presenceMember
        self.identity = identity
        self.nick = identity.name
        // A refresh whose token carries a new name: presence follows, as for a nickname change.
        self.movePresence(from: previous, into: &actions)
        actions.append(.cancel(.auth))
        self.tokenGeneration += 1
        guard let expiresAt = identity.expiresAt else { return actions.append(.cancel(.refresh)) }
        // Ask for a fresh token `refreshAhead` before the expiry (at once if less is left); close at the expiry.
        let remaining = Self.timeUntil(expiresAt)
        self.refreshAsked = false
        actions.append(
            .schedule(
                .refresh, in: max(.zero, remaining - self.settings.auth.refreshAhead), stamp: self.tokenGeneration))
    }

    /// The refresh timer of the current token fired: first it asks for a fresh token, then, at the expiry, it
    /// closes the socket.
    mutating func refreshTimerFired(stamp: Int, into actions: inout [Action]) {
        guard stamp == self.tokenGeneration, let expiresAt = self.identity?.expiresAt else { return }
        if !self.refreshAsked {
            self.refreshAsked = true
            actions.append(.send(.refresh(RefreshFrame(expiresAt: Self.milliseconds(expiresAt)))))
            return actions.append(.schedule(.refresh, in: Self.timeUntil(expiresAt), stamp: stamp))
        }
        actions.append(.count(.tokenExpired))
        actions.append(.close(.tokenExpired, reason: "the token expired; reconnect with a fresh one"))
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970 * 1000) }

    static func timeUntil(_ date: Date) -> TimeAmount {
        .nanoseconds(Int64(max(0, date.timeIntervalSinceNow) * 1e9))
    }
}
