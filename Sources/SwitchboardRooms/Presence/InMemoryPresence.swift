package import NIOCore
import ServiceLifecycle
import SwitchboardLocks
package import SwitchboardPubSub

/// Told of presence transitions (webhooks). Called from the store's caller or its timers; must return at once.
package protocol PresenceObserver: Sendable {
    func presenceChanged(_ transition: PresenceTransition)
}

/// Presence in this process's memory (the embedded broker: one node), with its transitions.
///
/// A room is occupied from its first socket; a member (a user, or an anonymous socket) joined from their first
/// socket there. `memberLeft` and `roomVacated` wait `leaveDelay` and are reported only if the member (or anyone,
/// for the room) has not come back meanwhile, in which case neither the leave nor the return is: a page reload, a
/// reconnect or a nickname change make none.
///
/// Run it as a `Service` placed after the observer's consumer (so it stops first): at graceful shutdown, once the
/// server has closed its sockets, the leaves still waiting are reported at once; no node is left to see anyone
/// come back.
package final class InMemoryPresence: PresenceStore, Service {
    /// A leave waiting for its delay: its timer, its generation (against a return racing the timer; also the order
    /// in which leaves were made) and its transition.
    private struct Pending {
        var timer: Scheduled<Void>
        var generation: Int
        var transition: PresenceTransition
    }

    private struct Room {
        var members: [String: PresenceMember] = [:]
        /// transition key → sockets of that member in the room.
        var counts: [String: Int] = [:]
        /// transition key → the delayed `memberLeft`.
        var leaving: [String: Pending] = [:]
        var vacating: Pending?

        var isIdle: Bool { self.members.isEmpty && self.leaving.isEmpty && self.vacating == nil }
    }

    private struct State {
        var rooms: [String: Room] = [:]
        var generation = 0
        /// Set at shutdown: leaves are reported at once from then on.
        var flushed = false
    }

    private let broker: any Broker
    private let observer: (any PresenceObserver)?
    private let leaveDelay: TimeAmount
    private let eventLoop: any EventLoop
    private let state = Locked(State())

    /// - Parameters:
    ///   - broker: Where joins and leaves are announced, on each room's channel.
    ///   - observer: Told of the transitions; `nil` computes none.
    ///   - leaveDelay: How long a leave waits for a return before it is reported.
    ///   - eventLoop: Where the delayed leaves wait.
    package init(
        broker: any Broker, observer: (any PresenceObserver)? = nil, leaveDelay: TimeAmount = .seconds(3),
        eventLoop: any EventLoop
    ) {
        self.broker = broker
        self.observer = observer
        self.leaveDelay = leaveDelay
        self.eventLoop = eventLoop
    }

    package func enter(_ member: PresenceMember, room name: String, promise: EventLoopPromise<Void>?) {
        let key = member.transitionKey
        // Announced and reported under the lock: both keep the order of the changes they describe.
        self.state.withLock { state in
            var room = state.rooms[name] ?? Room()
            guard room.members.updateValue(member, forKey: member.id) == nil else {
                state.rooms[name] = room
                return
            }
            self.announce("join", member, room: name)
            let now = PresenceTransition.now()
            if room.members.count == 1 {
                if let pending = room.vacating {
                    pending.timer.cancel()
                    room.vacating = nil
                } else {
                    self.observer?.presenceChanged(.roomOccupied(room: name, at: now))
                }
            }
            let count = room.counts[key, default: 0]
            room.counts[key] = count + 1
            if count == 0 {
                if let pending = room.leaving.removeValue(forKey: key) {
                    pending.timer.cancel()
                } else {
                    self.observer?.presenceChanged(.memberJoined(member, room: name, at: now))
                }
            }
            state.rooms[name] = room
        }
        promise?.succeed()
    }

    package func leave(_ member: PresenceMember, room name: String) {
        let key = member.transitionKey
        self.state.withLock { state in
            guard var room = state.rooms[name], room.members.removeValue(forKey: member.id) != nil else { return }
            self.announce("leave", member, room: name)
            let now = PresenceTransition.now()
            let count = room.counts[key, default: 1]
            if count > 1 {
                room.counts[key] = count - 1
            } else {
                room.counts[key] = nil
                self.delay(.memberLeft(member, room: name, at: now), in: &room, of: name, state: &state) {
                    $0.leaving[key]
                } set: {
                    $0.leaving[key] = $1
                }
            }
            if room.members.isEmpty {
                // Made after the member's leave with the same delay: it is reported after it.
                self.delay(.roomVacated(room: name, at: now), in: &room, of: name, state: &state) {
                    $0.vacating
                } set: {
                    $0.vacating = $1
                }
            }
            state.rooms[name] = room.isIdle ? nil : room
        }
    }

    package func members(of room: String) async throws -> [PresenceMember] {
        self.state.withLock { Array(($0.rooms[room]?.members ?? [:]).values) }.sorted { $0.nick < $1.nick }
    }

    /// Reports a leave after the delay, kept where `get` finds it and a return takes it back first; at once after
    /// shutdown began (or without a delay).
    private func delay(
        _ transition: PresenceTransition, in room: inout Room, of name: String, state: inout State,
        get: @escaping @Sendable (Room) -> Pending?, set: @escaping @Sendable (inout Room, Pending?) -> Void
    ) {
        guard let observer = self.observer else { return }
        guard !state.flushed, self.leaveDelay > .zero else { return observer.presenceChanged(transition) }
        state.generation += 1
        let generation = state.generation
        let timer = self.eventLoop.scheduleTask(in: self.leaveDelay) {
            self.state.withLock { state in
                guard var room = state.rooms[name], let pending = get(room), pending.generation == generation else {
                    return
                }
                set(&room, nil)
                observer.presenceChanged(pending.transition)
                state.rooms[name] = room.isIdle ? nil : room
            }
        }
        set(&room, Pending(timer: timer, generation: generation, transition: transition))
    }

    /// Waits for graceful shutdown, then reports every leave still waiting, in the order the leaves were made.
    package func run() async throws {
        try? await gracefulShutdown()
        self.flushPending()
    }

    /// Reports the waiting leaves now, and every leave from now on at once.
    package func flushPending() {
        self.state.withLock { state in
            state.flushed = true
            var pending: [Pending] = []
            for (name, var room) in state.rooms {
                pending += room.leaving.values
                pending += room.vacating.map { [$0] } ?? []
                room.leaving = [:]
                room.vacating = nil
                state.rooms[name] = room.isIdle ? nil : room
            }
            for leave in pending.sorted(by: { $0.generation < $1.generation }) {
                leave.timer.cancel()
                self.observer?.presenceChanged(leave.transition)
            }
        }
    }

    private func announce(_ event: String, _ member: PresenceMember, room: String) {
        let frame = PresenceFrame(room: room, event: event, member: member)
        self.broker.publish(frame.json(), to: RoomChannel.name(of: room), promise: nil)
    }
}
