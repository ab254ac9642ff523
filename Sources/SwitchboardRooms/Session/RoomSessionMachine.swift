package import Logging
package import NIOCore
package import SwitchboardAuth
package import SwitchboardWebSocket

/// One rooms-protocol session (docs/PROTOCOL.md) as a state machine: events in, actions out.
///
/// It knows no transport: the WebSocket endpoint (``RoomSocket``) is one adapter, which feeds it the client's frames,
/// the results of the async work it asked for and its timers, and carries out what it returns (send a frame, close,
/// reserve a room's topic, enter presence, read history, ask a hook, post a message). Every async result comes back
/// stamped with the attempt it belongs to (a join, a re-sync, a token verification), so a result that arrives after
/// the socket left the room, joined it again or timed out is recognised as stale and dropped: no flags, no counters
/// outside the machine. The node's registry is reached through a narrow, synchronous ``RoomSessionDirectory``.
///
/// - Important: Not thread-safe: an adapter calls it from one thread (its socket's event loop).
package struct RoomSessionMachine {
    /// What the machine goes by: the rooms' configuration, read once.
    package struct Settings: Sendable {
        package var auth: ChatAuthentication
        package var rateLimits: ChatRateLimits
        package var limits: RoomsLimits
        /// Messages shown on a join without `since` (a page of the history).
        package var historyShown: Int
        package var joinTimeout: TimeAmount
        package var asksJoinHook: Bool
        package var asksSayHook: Bool

        package init(_ configuration: RoomsConfiguration) {
            self.auth = configuration.auth
            self.rateLimits = configuration.rateLimits
            self.limits = configuration.limits
            self.historyShown = configuration.history.shownOnJoin
            self.joinTimeout = configuration.joinTimeout
            self.asksJoinHook = configuration.hooks.join != nil
            self.asksSayHook = configuration.hooks.say != nil
        }
    }

    /// A timer the adapter runs for the machine; a new one of a kind replaces the old.
    package enum Timer: Hashable, Sendable {
        /// The first `auth` must come by then.
        case auth
        /// Ask for a fresh token, then close when it has expired.
        case refresh
        /// A join or re-sync of the room must be answered by then.
        case join(room: String)
    }

    /// One room of the session, from the `join` request until it leaves.
    struct Room {
        enum Phase: Equatable {
            /// The join hook is asked.
            case askingHook
            /// The room's topic place is being reserved (and the member attached).
            case reserving
            /// Presence is being stored.
            case entering
            /// The history is read and sent; `answered` once the `joined` frame is on its way.
            case catchingUp(answered: Bool)
            /// Live messages flow.
            case live
        }

        var phase: Phase
        /// The current join or re-sync; results of earlier ones are stale.
        var attempt: Int
        var isResync: Bool
        var since: String?
        var ref: String?
        /// The topic place is reserved and the member attached: it must be released.
        var isAttached = false
        /// Presence has this socket's entry (entered, not yet left).
        var isPresent = false
        /// The client was told of a gap and has not re-synced yet (a `join` for this room re-syncs).
        var awaitsResync = false
        /// The newest message id sent in this catch-up.
        var newest: String?
    }

    let settings: Settings
    /// Unique per socket across nodes.
    package let memberID: String
    var nick = "guest"
    /// Who the socket is, once a token (or the connect hook) proved it.
    package internal(set) var identity: Identity?
    /// The token verification in flight, by attempt, and the `ref` of its `auth`.
    var verifying: Int?
    var verifyingRef: String?
    var verifications = 0
    /// Frames that came while the first token was being verified: they run once it is, as the user it proves.
    var held: [(bytes: ByteBuffer, isText: Bool)] = []
    var rate: SocketRateLimits
    /// The user this socket is counted for in the directory.
    var countedUser: String?
    /// Counts the tokens adopted; a refresh timer that fires with an older stamp is stale.
    var tokenGeneration = 0
    /// The current token's `refresh` was sent: its timer's next firing is the expiry.
    var refreshAsked = false
    /// The rooms, from their `join` on.
    var rooms: [String: Room] = [:]
    var attempts = 0
    package internal(set) var isClosed = false
    /// Dropped for abuse: what the client still sends is not looked at.
    var isDropped = false
    /// The observer was told this socket opened (and will be told it closed).
    var reportedOpen = false
    /// Say-hook answers are applied in the order the messages were sent: the next to ask, the next to apply, the
    /// messages asked about, and the answers that came early.
    var nextSay = 0
    var nextApply = 0
    var pendingSays: [Int: (room: String, ref: String?)] = [:]
    var sayAnswers: [Int: (decision: ChatHooks.SayDecision, room: String, ref: String?)] = [:]

    /// - Parameters:
    ///   - memberID: The socket's id, unique across nodes (``MemberIDs``).
    ///   - now: The monotonic clock in nanoseconds (``RoomSessionMachine/now()``), for the rate limits.
    package init(settings: Settings, memberID: String, now: UInt64) {
        self.settings = settings
        self.memberID = memberID
        self.rate = SocketRateLimits(settings.rateLimits, now: now)
    }

    /// This socket in presence.
    package var presenceMember: PresenceMember {
        PresenceMember(id: self.memberID, nick: self.nick, user: self.identity?.userID)
    }

    /// This socket as the backend's hooks see it.
    var hookMember: ChatHooks.Member {
        ChatHooks.Member(socket: self.memberID, user: self.identity?.userID, nick: self.nick)
    }

    /// Whether `attempt` is the current join or re-sync of `room`: a catch-up going out stops when not.
    package func isCurrent(room: String, attempt: Int) -> Bool {
        !self.isClosed && self.rooms[room]?.attempt == attempt
    }

    /// Whether the socket is in `room` (joined or joining).
    package func isIn(_ room: String) -> Bool { self.rooms[room] != nil }

    /// Now on the monotonic clock the rate limits use, in nanoseconds.
    package static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }
}

extension RoomSessionMachine {
    /// What happens to a session.
    package enum Event {
        /// The socket is open; `preset` is the identity the connect hook vouched for.
        case opened(preset: Identity?)
        /// A message from the client.
        case received(ByteBuffer, isText: Bool)
        /// A token verification ended.
        case verified(attempt: Int, Result<Identity, TokenError>)
        case joinHookAnswered(room: String, attempt: Int, ChatHooks.JoinDecision)
        /// The room's topic place was reserved and the member attached (or not, with the error).
        case reserved(room: String, attempt: Int, Result<Void, any Error>)
        case presenceStored(room: String, attempt: Int, Result<Void, any Error>)
        /// A page of the history (and, on the first page, the room's members) was read.
        case historyRead(room: String, attempt: Int, Result<HistoryRead, any Error>)
        /// The frames of a ``Action/sendPaced(_:room:attempt:)`` were all written.
        case historySent(room: String, attempt: Int)
        /// The member handed over from history to live messages.
        case handedOver(room: String, attempt: Int, RoomMember.HistoryOutcome)
        /// Messages of `room` may have been lost for this socket.
        case messagesLost(room: String)
        case sayAnswered(sequence: Int, ChatHooks.SayDecision)
        case posted(room: String, ref: String?, text: String, member: PresenceMember, Result<Void, any Error>)
        case timerFired(Timer, stamp: Int)
        /// The server API closes the socket.
        case disconnect(code: WebSocketCloseCode, reason: String)
        /// The server API takes the socket out of `room`.
        case unsubscribe(room: String)
        /// The connection ended.
        case closed
    }

    /// A page of history read for a join or re-sync.
    package struct HistoryRead: Sendable {
        package var page: HistoryPage
        /// The room's members, read with the first page.
        package var members: [PresenceMember]?

        package init(page: HistoryPage, members: [PresenceMember]?) {
            self.page = page
            self.members = members
        }
    }

    /// What the adapter does for a session, in order.
    package enum Action {
        case send(ServerFrame)
        /// Sends each frame once the one before it is written (a catch-up never fills the outbound queue), then
        /// reports ``Event/historySent(room:attempt:)``; stops, reporting nothing, once `attempt` is not current.
        case sendPaced([ServerFrame], room: String, attempt: Int)
        case close(WebSocketCloseCode, reason: String)
        /// Closes for a policy reason (the client floods or abuses): the close frame, then the connection, with
        /// nothing more read from it.
        case drop(WebSocketCloseCode, reason: String)
        case schedule(Timer, in: TimeAmount, stamp: Int)
        case cancel(Timer)
        case verify(token: String, attempt: Int)
        case askJoinHook(room: String, attempt: Int, ChatHooks.Member)
        /// Reserves the room's topic and attaches a member holding live messages; reports ``Event/reserved``.
        case reserve(room: String, attempt: Int)
        /// Detaches the room's member from the topic.
        case release(room: String)
        /// Enters presence; with an attempt, reports ``Event/presenceStored``.
        case enterPresence(PresenceMember, room: String, attempt: Int?)
        case leavePresence(PresenceMember, room: String)
        /// Reads a page of history after `since` (the recent page without), with the members on the first page.
        case readHistory(room: String, attempt: Int, since: String?, withMembers: Bool)
        /// The member holds live messages again, for a re-sync.
        case restartHandOver(room: String)
        /// The history went out up to `newest`: the member hands over to live messages; reports
        /// ``Event/handedOver``.
        case handOver(room: String, attempt: Int, newest: String?)
        case askSayHook(sequence: Int, ChatHooks.Member, room: String, text: String)
        /// Stores and publishes a message; reports ``Event/posted``.
        case post(room: String, text: String, ref: String?, PresenceMember)
        case socketOpened(PresenceMember)
        case socketClosed(PresenceMember)
        case said(PresenceMember, room: String, text: String)
        case count(ChatCounters.Hit)
        case log(Logger.Level, Logger.Message, Logger.Metadata)
    }
}

/// What a session asks of the node's registry, synchronously: the per-user and per-room counts and limits.
package protocol RoomSessionDirectory {
    /// Counts the socket in for `user`; `false` if the user has as many sockets as allowed.
    func admit(user: String, now: UInt64) -> Bool
    /// Counts the socket out of `user`'s.
    func release(user: String)
    /// Counts the socket into `room`, a room it creates charged to `user` (without one, to the socket's address);
    /// why not, if refused.
    func enter(room: String, user: String?) -> RoomEntryRefusal?
    func leave(room: String)
    /// Takes a message from `user`'s bucket (with a user) and from the socket's address's; `nil` if taken, else
    /// what refused it (`"messages of this user"`, `"messages from this address"`) and nanoseconds to wait.
    func takeMessage(of user: String?, now: UInt64) -> (what: String, wait: UInt64)?
}
