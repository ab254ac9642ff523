package import NIOCore
import ServiceLifecycle
package import SwitchboardChat
import SwitchboardLocks

/// Turns this node's sockets and presence changes into webhook events, and hands them to the dispatcher.
///
/// A member is a user (all their sockets in the room count as one) or, anonymous, one socket. `member_joined` and
/// `room_occupied` go out at once; `member_left` and `room_vacated` wait ``WebhookConfiguration/leaveDelay`` and go
/// out only if the member (or anyone, for the room) has not come back meanwhile, in which case neither the leave
/// nor the return is sent: a page reload, a reconnect or a nickname change make no events.
///
/// What it counts is this node's sockets: with several nodes, a room or user present on two nodes is occupied or
/// joined on each (docs/WEBHOOKS.md).
///
/// Run it as a `Service` placed after the dispatcher (so it stops first): at graceful shutdown, once the server has
/// closed its sockets, the leaves still waiting for their delay are sent at once, for the dispatcher to drain; no
/// node is left to see anyone come back.
package final class WebhookEvents: ChatObserver, Service {
    /// A leave waiting for its delay: its timer, its generation (against a cancel racing the timer; also the order
    /// in which leaves were made) and its event.
    private typealias Pending = (timer: Scheduled<Void>, generation: Int, event: WebhookEvent)

    private struct Room {
        /// Sockets in the room here.
        var sockets = 0
        /// member key → sockets of that member in the room.
        var members: [String: Int] = [:]
        /// member key → the delayed `member_left`.
        var leaving: [String: Pending] = [:]
        var vacating: Pending?

        var isIdle: Bool { self.sockets == 0 && self.leaving.isEmpty && self.vacating == nil }
    }

    private let dispatcher: WebhookDispatcher
    private let eventLoop: any EventLoop
    private let delay: TimeAmount
    private let rooms = Locked<[String: Room]>([:])
    private let generation = Locked(0)
    /// Set at shutdown: leaves are sent at once from then on.
    private let flushed = Locked(false)

    /// - Parameter eventLoop: Where the delayed events wait.
    package init(dispatcher: WebhookDispatcher, eventLoop: any EventLoop) {
        self.dispatcher = dispatcher
        self.eventLoop = eventLoop
        self.delay = dispatcher.configuration.leaveDelay
    }

    package func socketOpened(_ member: PresenceMember) {
        self.dispatcher.send(WebhookEvent(.connect, member))
    }

    package func socketClosed(_ member: PresenceMember) {
        self.dispatcher.send(WebhookEvent(.disconnect, member))
    }

    package func said(_ member: PresenceMember, room: String, text: String) {
        self.dispatcher.send(
            WebhookEvent(
                name: .message, room: room, user: member.user, socket: member.id, nick: member.nick, text: text))
    }

    package func entered(_ member: PresenceMember, room name: String) {
        let key = Self.key(member)
        // Sent under the lock: events leave in the order the changes happened.
        self.rooms.withLock { rooms in
            var room = rooms[name] ?? Room()
            if room.sockets == 0 {
                if let pending = room.vacating {
                    pending.timer.cancel()
                    room.vacating = nil
                } else {
                    self.dispatcher.send(WebhookEvent(name: .roomOccupied, room: name))
                }
            }
            room.sockets += 1
            let count = room.members[key, default: 0]
            room.members[key] = count + 1
            if count == 0 {
                if let pending = room.leaving.removeValue(forKey: key) {
                    pending.timer.cancel()
                } else {
                    self.dispatcher.send(
                        WebhookEvent(.memberJoined, member, room: name))
                }
            }
            rooms[name] = room
        }
    }

    package func left(_ member: PresenceMember, room name: String) {
        let key = Self.key(member)
        let time = WebhookEvent.now()
        self.rooms.withLock { rooms in
            guard var room = rooms[name], let count = room.members[key] else { return }
            room.sockets -= 1
            if count > 1 {
                room.members[key] = count - 1
            } else {
                room.members[key] = nil
                self.leave(
                    WebhookEvent(.memberLeft, member, room: name, time: time), in: &room, named: name,
                    waitingAt: \.leaving[key])
            }
            if room.sockets == 0 {
                // Made after the member's leave with the same delay: it goes out after it.
                self.leave(
                    WebhookEvent(name: .roomVacated, room: name, time: time), in: &room, named: name,
                    waitingAt: \.vacating)
            }
            rooms[name] = room.isIdle ? nil : room
        }
    }

    /// Sends a leave after the delay, from `slot` of the room, where it waits and where a return takes it back
    /// first; at once after shutdown began.
    private func leave(
        _ event: WebhookEvent, in room: inout Room, named name: String,
        waitingAt slot: any WritableKeyPath<Room, Pending?> & Sendable
    ) {
        guard !self.flushed.withLock({ $0 }) else { return self.dispatcher.send(event) }
        let id = self.nextGeneration()
        let timer = self.eventLoop.scheduleTask(in: self.delay) {
            self.fire(room: name) { room in
                guard let pending = room[keyPath: slot], pending.generation == id else { return nil }
                room[keyPath: slot] = nil
                return event
            }
        }
        room[keyPath: slot] = (timer, id, event)
    }

    /// Waits for graceful shutdown, then sends every leave still waiting, in the order the leaves were made.
    package func run() async throws {
        try? await gracefulShutdown()
        self.flushPending()
    }

    /// Sends the waiting leaves now, and every leave from now on at once.
    package func flushPending() {
        self.rooms.withLock { rooms in
            self.flushed.withLock { $0 = true }
            var pending: [Pending] = []
            for (name, var room) in rooms {
                pending += room.leaving.values
                pending += room.vacating.map { [$0] } ?? []
                room.leaving = [:]
                room.vacating = nil
                rooms[name] = room.isIdle ? nil : room
            }
            for leave in pending.sorted(by: { $0.generation < $1.generation }) {
                leave.timer.cancel()
                self.dispatcher.send(leave.event)
            }
        }
    }

    /// Runs `take` on the room under the lock and sends what it returns; forgets the room once idle.
    private func fire(room name: String, _ take: (inout Room) -> WebhookEvent?) {
        self.rooms.withLock { rooms in
            guard var room = rooms[name] else { return }
            if let event = take(&room) { self.dispatcher.send(event) }
            rooms[name] = room.isIdle ? nil : room
        }
    }

    private func nextGeneration() -> Int {
        self.generation.withLock { value in
            value += 1
            return value
        }
    }

    private static func key(_ member: PresenceMember) -> String {
        member.user.map { "user:\($0)" } ?? "socket:\(member.id)"
    }
}

extension WebhookEvent {
    /// A socket or member event of `member`: its user, socket id and name.
    init(_ name: Name, _ member: PresenceMember, room: String? = nil, time: Int64 = WebhookEvent.now()) {
        self.init(name: name, room: room, user: member.user, socket: member.id, nick: member.nick, time: time)
    }
}
