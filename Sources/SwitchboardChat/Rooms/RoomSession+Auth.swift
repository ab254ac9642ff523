import FoundationEssentials
import NIOCore
import SwitchboardAuth
import SwitchboardWebSocket

/// The reply to a verified `auth`.
struct AuthenticatedFrame: Encodable {
    var type = "authenticated"
    var you: PresenceMember
    /// Milliseconds since 1970 when the token expires; absent if it never does.
    var expiresAt: Int64?
    var ref: String?
}

/// Sent `refreshAhead` before the token expires: send `auth` with a fresh token before `expiresAt`.
struct RefreshFrame: Encodable {
    var type = "refresh"
    var expiresAt: Int64
}

extension RoomSession {
    /// Arms the deadline for the first `auth` when tokens are required.
    func armAuthDeadline() {
        let auth = self.endpoint.auth
        guard auth.verifier != nil, !auth.allowsAnonymous else { return }
        let session = NIOLoopBound(self, eventLoop: self.socket.eventLoop)
        self.authTimer = self.socket.eventLoop.scheduleTask(in: auth.authTimeout) {
            let session = session.value
            guard session.identity == nil, !session.isClosed else { return }
            session.endpoint.sockets.counters.count(.authRefused)
            session.socket.close(code: .unauthorized, reason: "no valid token in time")
        }
    }

    /// `auth`: verifies the token off the loop, then adopts the identity (first time) or extends it (a refresh).
    func authenticate(_ token: String?, ref: String?) {
        guard let verifier = self.endpoint.auth.verifier else {
            return self.send(ErrorFrame("auth_off", "this server has no token key configured", ref: ref))
        }
        guard let token, !token.isEmpty else {
            return self.send(ErrorFrame("token_malformed", "auth needs a token", ref: ref))
        }
        guard !self.isVerifying else {
            return self.send(ErrorFrame("auth_pending", "a token is being verified already", ref: ref))
        }
        self.isVerifying = true
        let session = NIOLoopBound(self, eventLoop: self.socket.eventLoop)
        let eventLoop = self.socket.eventLoop
        Task {
            let result: Result<Identity, TokenError>
            do throws(TokenError) {
                result = .success(try await verifier.verify(token))
            } catch {
                result = .failure(error)
            }
            eventLoop.execute { session.value.verified(result, ref: ref) }
        }
    }

    /// The connect hook vouched for `identity`: the socket is that user from its first frame on, as if it had
    /// sent a valid token.
    func accepted(byHook identity: Identity) {
        self.verified(.success(identity), ref: nil)
    }

    private func verified(_ result: Result<Identity, TokenError>, ref: String?) {
        self.isVerifying = false
        guard !self.isClosed else { return }
        defer {
            // What the client sent meanwhile runs now, as the user the token proved (or anonymously, or refused).
            let held = self.heldWhileVerifying
            self.heldWhileVerifying = []
            for message in held where !self.isClosed { self.received(message) }
        }
        switch result {
        case .failure(let error):
            self.endpoint.sockets.counters.count(.authRefused)
            self.send(ErrorFrame(error.code.rawValue, error.message, ref: ref))
            // A refused refresh leaves the socket as it was, until its token expires; a refused first token (when
            // tokens are required) ends it.
            if self.identity == nil, !self.endpoint.auth.allowsAnonymous {
                self.socket.close(code: .unauthorized, reason: error.code.rawValue)
            }
        case .success(let identity):
            if let current = self.identity {
                guard current.userID == identity.userID else {
                    self.send(ErrorFrame("identity_changed", "a refresh must be for the same user", ref: ref))
                    return self.socket.close(code: .identityChanged, reason: "a refresh named another user")
                }
            } else if !self.rooms.isEmpty || self.present.count > 0 {
                return self.send(
                    ErrorFrame("auth_after_join", "authenticate before joining rooms (or on a new socket)", ref: ref))
            }
            if self.countedUser == nil {
                guard self.endpoint.users.connect(identity.userID, now: Self.now()) else {
                    self.endpoint.sockets.counters.count(.rateLimited)
                    self.send(
                        ErrorFrame("too_many_connections", "this user has as many sockets open as allowed", ref: ref))
                    return self.socket.close(code: .tooManyConnections, reason: "too many connections for this user")
                }
                self.countedUser = identity.userID
                self.endpoint.userSockets.add(self, user: identity.userID)
            }
            self.adopt(identity)
            if !self.reportedOpen {
                self.reportedOpen = true
                self.endpoint.observer?.socketOpened(self.presenceMember)
            }
            self.send(
                AuthenticatedFrame(
                    you: self.presenceMember, expiresAt: identity.expiresAt.map(Self.milliseconds), ref: ref))
        }
    }

    /// Takes `identity` for this socket: its name replaces the nickname; the expiry timers start over.
    private func adopt(_ identity: Identity) {
        let previous = self.presenceMember
        self.identity = identity
        self.nick = identity.name
        // A refresh whose token carries a new name: presence follows, as for a nickname change.
        if previous != self.presenceMember {
            for room in self.present {
                self.endpoint.presence.leave(previous, room: room)
                self.endpoint.presence.enter(self.presenceMember, room: room, promise: nil)
            }
        }
        self.authTimer?.cancel()
        self.authTimer = nil
        self.refreshTimer?.cancel()
        self.refreshTimer = nil
        guard let expiresAt = identity.expiresAt else { return }
        // Ask for a fresh token `refreshAhead` before the expiry (at once if less is left); close at the expiry.
        let remaining = TimeAmount.nanoseconds(Int64(max(0, expiresAt.timeIntervalSinceNow) * 1e9))
        self.schedule(in: max(.zero, remaining - self.endpoint.auth.refreshAhead), expiresAt) { session in
            session.send(RefreshFrame(expiresAt: Self.milliseconds(expiresAt)))
            let left = TimeAmount.nanoseconds(Int64(max(0, expiresAt.timeIntervalSinceNow) * 1e9))
            session.schedule(in: left, expiresAt) { session in
                session.endpoint.sockets.counters.count(.tokenExpired)
                session.socket.close(code: .tokenExpired, reason: "the token expired; reconnect with a fresh one")
            }
        }
    }

    /// Runs `body` after `delay` unless the socket closed or its token changed (a refresh re-arms the timers).
    private func schedule(in delay: TimeAmount, _ expiresAt: Date, _ body: @escaping (RoomSession) -> Void) {
        let session = NIOLoopBound(self, eventLoop: self.socket.eventLoop)
        let task = NIOLoopBound(body, eventLoop: self.socket.eventLoop)
        self.refreshTimer = self.socket.eventLoop.scheduleTask(in: delay) {
            let session = session.value
            guard !session.isClosed, session.identity?.expiresAt == expiresAt else { return }
            task.value(session)
        }
    }

    /// Whether a request other than `auth` may go ahead; tells the client why not.
    func mayProceed(ref: String?) -> Bool {
        guard self.identity == nil, !self.endpoint.auth.allowsAnonymous else { return true }
        self.send(ErrorFrame("unauthenticated", "send auth with a token first", ref: ref))
        return false
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64(date.timeIntervalSince1970 * 1000) }
}

extension RoomSession {
    /// Now on the monotonic clock the rate limits use, in nanoseconds.
    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// Whether a rate limit let a request through (`wait` is `nil`); if not, tells the client when to try again,
    /// and closes a socket that keeps going (4008).
    func allowed(_ wait: UInt64?, _ what: String, room: String?, ref: String?) -> Bool {
        guard let wait else {
            self.rate.refusals = 0
            return true
        }
        self.rate.refusals += 1
        self.endpoint.sockets.counters.count(.rateLimited)
        let limits = self.endpoint.sockets.configuration.rateLimits
        guard self.rate.refusals <= limits.maxRefusals else {
            self.socket.close(code: .rateLimited, reason: "rate limit exceeded")
            return false
        }
        let milliseconds = Int((wait + 999_999) / 1_000_000)
        self.send(
            ErrorFrame(
                "rate_limited", "too many \(what); try again in \(milliseconds) ms", room: room,
                retryAfter: milliseconds, ref: ref))
        return false
    }
}
