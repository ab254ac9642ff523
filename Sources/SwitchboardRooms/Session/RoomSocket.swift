import FoundationEssentials
import Logging
import NIOCore
import SwitchboardAuth
import SwitchboardLocks
import SwitchboardTopics
import SwitchboardWebSocket

/// The rooms protocol over a WebSocket: the adapter that feeds a ``RoomSessionMachine`` the socket's messages, its
/// timers and the results of the async work it asks for, and carries out its actions on the socket, the topics, the
/// stores and the hooks.
///
/// - Important: Lives on its socket's event loop: every method is called there.
final class RoomSocket {
    let socket: WebSocket
    let context: RoomsContext
    private var machine: RoomSessionMachine
    /// The room members attached to their topics, by room.
    private var members: [String: RoomMember] = [:]
    private var timers: [RoomSessionMachine.Timer: Scheduled<Void>] = [:]
    /// Events that arrive while actions are carried out wait here, so each event's actions run in order.
    private var queued: [RoomSessionMachine.Event] = []
    private var isHandling = false
    /// What the registry holds for this socket (the server API acts on the socket through it).
    private(set) lazy var handle = Handle(self)

    /// The client's address, when it is counted (``ConnectionRegistry/address(of:)``): rooms it creates without a
    /// token are charged to it, and its messages take from its bucket.
    let address: String?

    init(socket: WebSocket, context: RoomsContext, address: String?) {
        self.socket = socket
        self.context = context
        self.address = address
        self.machine = RoomSessionMachine(
            settings: context.settings, memberID: context.memberIDs.next(), now: RoomSessionMachine.now())
    }

    /// Handles `event` and carries out what the machine returns.
    func handle(_ event: RoomSessionMachine.Event) {
        self.queued.append(event)
        guard !self.isHandling else { return }
        self.isHandling = true
        defer { self.isHandling = false }
        while !self.queued.isEmpty {
            let next = self.queued.removeFirst()
            let directory = RegistryDirectory(
                registry: self.context.registry, connection: self.handle, address: self.address)
            for action in self.machine.handle(next, now: RoomSessionMachine.now(), directory: directory) {
                self.perform(action)
            }
        }
    }

    private func perform(_ action: RoomSessionMachine.Action) {
        switch action {
        case .send(let frame):
            self.send(frame)
        case .sendPaced(let frames, let room, let attempt):
            self.sendPaced(frames[...], room: room, attempt: attempt)
        case .close(let code, let reason):
            self.socket.close(code: code, reason: reason)
        case .drop(let code, let reason):
            self.socket.drop(code: code, reason: reason)
        case .schedule(let timer, let delay, let stamp):
            self.timers[timer]?.cancel()
            let bound = NIOLoopBound(self, eventLoop: self.socket.eventLoop)
            self.timers[timer] = self.socket.eventLoop.scheduleTask(in: delay) {
                bound.value.timers[timer] = nil
                bound.value.handle(.timerFired(timer, stamp: stamp))
            }
        case .cancel(let timer):
            self.timers.removeValue(forKey: timer)?.cancel()
        case .verify(let token, let attempt):
            guard let verifier = self.context.configuration.auth.verifier else { return }
            self.run {
                do throws(TokenError) {
                    return .verified(attempt: attempt, .success(try await verifier.verify(token)))
                } catch {
                    return .verified(attempt: attempt, .failure(error))
                }
            }
        case .askJoinHook(let room, let attempt, let member):
            guard let hook = self.context.configuration.hooks.join else { return }
            self.run { .joinHookAnswered(room: room, attempt: attempt, await hook(member, room)) }
        case .reserve(let room, let attempt):
            self.reserve(room, attempt: attempt)
        case .release(let room):
            self.members.removeValue(forKey: room)?.leave()
        case .enterPresence(let member, let room, let attempt):
            let stored = self.socket.eventLoop.makePromise(of: Void.self)
            self.context.presence.enter(member, room: room, promise: stored)
            if let attempt {
                self.whenComplete(stored.futureResult) { .presenceStored(room: room, attempt: attempt, $0) }
            }
        case .leavePresence(let member, let room):
            self.context.presence.leave(member, room: room)
        case .readHistory(let room, let attempt, let since, let withMembers):
            self.readHistory(room, attempt: attempt, since: since, withMembers: withMembers)
        case .restartHandOver(let room):
            self.members[room]?.restartHandOver()
        case .handOver(let room, let attempt, let newest):
            let outcome = self.members[room]?.historySent(newest: newest) ?? .delivered
            self.handle(.handedOver(room: room, attempt: attempt, outcome))
        case .askSayHook(let sequence, let member, let room, let text):
            guard let hook = self.context.configuration.hooks.say else { return }
            self.run { .sayAnswered(sequence: sequence, await hook(member, room, text)) }
        case .post(let room, let text, let ref, let member):
            let posted = self.socket.eventLoop.makePromise(of: Void.self)
            // Charged to the user, else the address, else this socket (a loopback peer, not counted by address).
            let client = member.user.map(ClientID.user) ?? self.address.map(ClientID.address) ?? .socket(member.id)
            self.context.log.post(
                room: room, nick: member.nick, user: member.user, client: client, text: text, promise: posted)
            self.whenComplete(posted.futureResult) {
                .posted(room: room, ref: ref, text: text, member: member, $0)
            }
        case .socketOpened(let member):
            self.context.observer?.socketOpened(member)
        case .socketClosed(let member):
            self.context.observer?.socketClosed(member)
        case .said(let member, let room, let text):
            self.context.observer?.said(member, room: room, text: text)
        case .count(let hit):
            self.context.counters.count(hit)
        case .log(let level, let message, let metadata):
            self.context.logger.log(level: level, message, metadata: metadata)
        }
    }

    // MARK: Effects

    private static let encoder = JSONEncoder()

    private func send(_ frame: ServerFrame) {
        guard let data = try? Self.encoder.encode(frame) else { return }
        try? self.socket.send(WebSocketMessage(kind: .text, data: ByteBuffer(bytes: data)))
    }

    /// Sends each frame once the one before was written, while `attempt` is current; then says so.
    private func sendPaced(_ frames: ArraySlice<ServerFrame>, room: String, attempt: Int) {
        guard self.machine.isCurrent(room: room, attempt: attempt) else { return }
        guard let frame = frames.first else { return self.handle(.historySent(room: room, attempt: attempt)) }
        guard let data = try? Self.encoder.encode(frame) else { return }
        let written = self.socket.eventLoop.makePromise(of: Void.self)
        let bound = NIOLoopBound(self, eventLoop: self.socket.eventLoop)
        // A frame that cannot be written (closed, dropped as a slow reader) ends the catch-up: closing cleans up.
        written.futureResult.whenSuccess { bound.value.sendPaced(frames.dropFirst(), room: room, attempt: attempt) }
        self.socket.send(WebSocketMessage(kind: .text, data: ByteBuffer(bytes: data)), written: written)
    }

    /// Reserves the room's topic; once it is, attaches a member (live messages are held from then on) if the join
    /// is still current, else gives the place back.
    private func reserve(_ room: String, attempt: Int) {
        let topics = self.context.topics
        let eventLoop = self.socket.eventLoop
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        self.run(onLoop: { reservation in
            let socket = bound.value
            guard socket.machine.isCurrent(room: room, attempt: attempt) else {
                if case .success(let reservation) = reservation { reservation.release() }
                return nil
            }
            return .reserved(
                room: room, attempt: attempt,
                reservation.map { reservation in socket.attach(reservation, room: room) })
        }) {
            try await topics.reserve(RoomChannel.name(of: room), on: eventLoop)
        }
    }

    private func attach(_ reservation: TopicReservation, room: String) {
        let bound = NIOLoopBound(self, eventLoop: self.socket.eventLoop)
        let member = RoomMember(socket: self.socket, room: room) { member in
            // Only the room's current member speaks for it.
            guard bound.value.members[member.room] === member else { return }
            bound.value.handle(.messagesLost(room: member.room))
        }
        member.membership = reservation.attach(member)
        self.members[room] = member
    }

    /// Reads a page of history, and on the first page the room's members, at the same time.
    private func readHistory(_ room: String, attempt: Int, since: String?, withMembers: Bool) {
        let (log, presence) = (self.context.log, self.context.presence)
        self.run {
            do {
                async let page = log.history(of: room, since: since, limit: RoomSessionMachine.historyPageSize)
                async let members = withMembers ? presence.members(of: room) : nil
                let read = RoomSessionMachine.HistoryRead(page: try await page, members: try await members)
                return .historyRead(room: room, attempt: attempt, .success(read))
            } catch {
                return .historyRead(room: room, attempt: attempt, .failure(error))
            }
        }
    }

    /// Runs async work the machine asked for and hands its event back on the loop.
    ///
    /// A task per request (a join, a token, a hook call), never per message: the work is async (a broker
    /// subscription, a store, the backend) and is started from a callback on the event loop, where there is no task
    /// to structure it under. Its result comes back as an event, stamped with its attempt, so the machine drops it
    /// if it came too late.
    private func run(_ work: @escaping @Sendable () async -> RoomSessionMachine.Event) {
        let bound = NIOLoopBound(self, eventLoop: self.socket.eventLoop)
        let eventLoop = self.socket.eventLoop
        Task {
            let event = await work()
            eventLoop.execute { bound.value.handle(event) }
        }
    }

    /// Runs async work and, on the loop, turns its result into an event (or none).
    private func run<Value: Sendable>(
        onLoop: @escaping (Result<Value, any Error>) -> RoomSessionMachine.Event?,
        _ work: @escaping @Sendable () async throws -> Value
    ) {
        let eventLoop = self.socket.eventLoop
        let finish = NIOLoopBound(onLoop, eventLoop: eventLoop)
        let bound = NIOLoopBound(self, eventLoop: eventLoop)
        // See run(_:): one task per request, from a callback on the loop.
        Task {
            let result: Result<Value, any Error>
            do {
                result = .success(try await work())
            } catch {
                result = .failure(error)
            }
            eventLoop.execute {
                if let event = finish.value(result) { bound.value.handle(event) }
            }
        }
    }

    /// Hands `future`'s result back as an event (on the loop: the promises are the socket's loop's).
    private func whenComplete(
        _ future: EventLoopFuture<Void>, _ event: @escaping (Result<Void, any Error>) -> RoomSessionMachine.Event
    ) {
        let bound = NIOLoopBound(self, eventLoop: self.socket.eventLoop)
        let make = NIOLoopBound(event, eventLoop: self.socket.eventLoop)
        future.whenComplete { bound.value.handle(make.value($0)) }
    }

    /// Whether the socket is in `room`, on the loop.
    func isIn(_ room: String) -> Bool { self.machine.isIn(room) }
}

extension RoomSocket {
    /// The socket as the registry holds it: the server API's entry points, from any thread, hopping to the loop.
    final class Handle: RegisteredConnection {
        /// Weak: the socket keeps its handle, and the registry lets go of the handle when the socket closes.
        private struct Weak {
            weak var socket: RoomSocket?
        }

        private let socket: NIOLoopBound<Weak>

        init(_ socket: RoomSocket) {
            self.socket = NIOLoopBound(Weak(socket: socket), eventLoop: socket.socket.eventLoop)
        }

        func disconnect(code: WebSocketCloseCode, reason: String) {
            let socket = self.socket
            socket.eventLoop.execute { socket.value.socket?.handle(.disconnect(code: code, reason: reason)) }
        }

        func unsubscribe(from room: String) async -> Bool {
            let socket = self.socket
            let left = try? await socket.eventLoop.submit {
                guard let session = socket.value.socket, session.isIn(room) else { return false }
                session.handle(.unsubscribe(room: room))
                return true
            }.value()
            return left ?? false
        }
    }
}

/// The registry as one socket's session sees it.
private struct RegistryDirectory: RoomSessionDirectory {
    let registry: ConnectionRegistry
    let connection: RoomSocket.Handle

    func admit(user: String, now: UInt64) -> Bool { self.registry.admit(self.connection, user: user, now: now) }
    func release(user: String) { self.registry.release(self.connection, user: user) }
    /// The socket's address, when it is counted (``ConnectionRegistry/address(of:)``).
    let address: String?

    func enter(room: String, user: String?) -> RoomEntryRefusal? {
        self.registry.enter(room, client: user.map(ClientID.user) ?? self.address.map(ClientID.address))
    }
    func leave(room: String) { self.registry.leave(room) }
    func takeMessage(of user: String?, now: UInt64) -> (what: String, wait: UInt64)? {
        if let user, let wait = self.registry.takeMessage(of: user, now: now) { return ("messages of this user", wait) }
        if let address, let wait = self.registry.takeMessage(ofAddress: address, now: now) {
            return ("messages from this address", wait)
        }
        return nil
    }
}
