import FoundationEssentials
package import Logging
import NIOConcurrencyHelpers
package import NIOCore
import ServiceLifecycle
package import SwitchboardRedis
package import SwitchboardRooms

/// Presence in Redis, correct across nodes, with its transitions: a sorted set per room (``RoomKeys/presence(_:)``)
/// of members scored by their expiry time, and the counts and markers that make transitions.
///
/// Each change (enter, leave), its announcement on the room's channel and the transitions it makes are one script
/// (``enterScript``, ``leaveScript``), queued on the client's connection under the same lock as this node's record
/// of its members, so the set, the announcements and every node's view follow the order in which sockets entered and
/// left, and a leave is announced only by whoever removed the member.
///
/// Transitions (when an ``PresenceObserver`` is given) are reported once per cluster: `roomOccupied` and
/// `memberJoined` by the node whose enter made them; `memberLeft` and `roomVacated` wait the leave delay in the due
/// set (``RoomKeys/dueLeaves(bucket:)``), which every node polls: whichever claims a due leave reports it if its marker is
/// still there (any return deletes it). So a leave is reported even when its node stopped or crashed meanwhile.
///
/// Each node refreshes its own members every `ttl / 3`; a node that dies stops refreshing, and within `ttl` (plus
/// one sweep) its members are removed by any surviving node's sweep (leave script: announced, counted, reported).
/// A node sweeps the rooms where it has members, and the rooms of an index (``RoomKeys/presenceRooms(bucket:)``) whose every
/// member has expired, so a crashed node's rooms are swept even where no other node has anyone. An own member a
/// refresh had to store again (after an outage longer than `ttl`) enters again, with its transitions.
///
/// A leave that fails (Redis down or hung) is kept and tried again every second until Redis answers: then it is
/// announced and reported as any other, or, if its member is gone already (the first try ran with its answer lost),
/// reported if that try's markers say so. One kept longer than the markers live, past ``maxPendingLeaves``, still
/// kept at shutdown, or whose member Redis lost (restarted empty) is counted as abandoned (``ChatCounters``) and
/// logged.
///
/// Run it as a swift-service-lifecycle `Service`: ``run()`` refreshes (and polls for due leaves) until graceful
/// shutdown, then removes this node's members (announcing their leave) instead of leaving them to expire.
package final class RedisPresence: PresenceStore, Service {
    let redis: any RedisRouter
    let ttl: Duration
    /// The scripts, or their `SPUBLISH` variants in a cluster.
    let scripts: Scripts
    let logger: Logger
    let observer: (any PresenceObserver)?
    /// How long `memberLeft` and `roomVacated` wait for a return.
    let leaveDelay: TimeAmount
    /// How often due leaves are looked for: a leave is reported at most this much after its delay.
    let pollInterval: Duration
    /// room → this node's members there, refreshed by the heartbeat. Commands that change the set are queued while
    /// holding this lock.
    let local = NIOLockedValueBox<[String: [String: PresenceMember]]>([:])
    /// Leaves Redis did not take (down, hung), oldest first, to try again.
    let pendingLeaves = NIOLockedValueBox<[PendingLeave]>([])
    /// Where abandoned leaves are counted.
    let counters: ChatCounters?

    /// The most leaves kept for Redis's return; past it one is abandoned at once.
    static let maxPendingLeaves = 10_000

    /// Claimed at most per poll (the next poll comes at once when a poll took this many).
    static let claimLimit = 1000
    /// How long a marker outlives its delay: a leave due while no node runs is still reported (and still cancelled
    /// by a return) when one starts within the hour.
    static let markerLifetime: Int64 = 3_600_000

    /// - Parameters:
    ///   - redis: Where the commands go: one Redis, shards, or a cluster (a room's on the shard of its channel).
    ///   - ttl: How long a member stays listed without a refresh from its node (the bound on ghosts after a crash).
    ///   - observer: Told of the transitions; `nil` computes none of the leaves' (no markers, no due set).
    ///   - leaveDelay: How long a leave waits for a return before it is reported.
    ///   - pollInterval: How often due leaves are looked for; by default a quarter of the delay, at most 250 ms.
    ///   - logger: Where failed refreshes are logged (at debug level: the client logs the outage itself).
    package init(
        redis: any RedisRouter, ttl: Duration = .seconds(30), observer: (any PresenceObserver)? = nil,
        leaveDelay: TimeAmount = .seconds(3), pollInterval: Duration? = nil, counters: ChatCounters? = nil,
        logger: Logger
    ) {
        self.redis = redis
        self.scripts = Scripts(for: redis)
        self.counters = counters
        self.ttl = ttl
        self.observer = observer
        self.leaveDelay = leaveDelay
        self.pollInterval =
            pollInterval ?? min(.milliseconds(250), .nanoseconds(max(leaveDelay.nanoseconds / 4, 1_000_000)))
        self.logger = logger
    }

    func expiry() -> String {
        let now = Date().timeIntervalSince1970 * 1000
        let ttl = Double(self.ttl.components.seconds) * 1000 + Double(self.ttl.components.attoseconds) / 1e15
        return String(Int64(now + ttl))
    }

    static func nowMilliseconds() -> String {
        String(Int64(Date().timeIntervalSince1970 * 1000))
    }

    static func keys(_ room: String) -> [ByteBuffer] {
        [RoomKeys.presence(room), RoomKeys.counts(room), RoomKeys.markers(room), RoomChannel.name(of: room)].map {
            ByteBuffer(string: $0)
        }
    }

    // MARK: PresenceStore

    package func enter(_ member: PresenceMember, room: String, promise: EventLoopPromise<Void>?) {
        let expiry = self.expiry()
        let stored = self.local.withLockedValue { local in
            local[room, default: [:]][member.id] = member
            let entered = self.redis.evaluateNow(
                self.scripts.enter, keys: Self.keys(room),
                arguments: [
                    ByteBuffer(string: expiry), ByteBuffer(string: member.json()),
                    PresenceFrame(room: room, event: "join", member: member).json(),
                    ByteBuffer(string: member.transitionKey),
                ])
            // The index is the cluster's key (another slot than the room's): its own command, queued right after.
            let index = RoomKeys.presenceRooms(bucket: RoomKeys.bucket(of: room))
            self.redis.sendNow(RESPCommand("ZADD", index, "GT", expiry, room), routedBy: index).whenFailure { _ in }
            return entered
        }
        stored.whenSuccess { reply in
            let flags = Self.integers(reply)
            guard flags.count == 3 else { return }
            self.reportEnter(member, room: room, occupied: flags[1] == 1, joined: flags[2] == 1)
        }
        if let promise { stored.map { _ in }.cascade(to: promise) }
    }

    package func leave(_ member: PresenceMember, room: String) {
        self.local.withLockedValue { local in
            local[room]?[member.id] = nil
            if local[room]?.isEmpty == true { local[room] = nil }
            let token = self.leaveToken()
            self.queueLeave(member, room: room, token: token).whenFailure { error in
                self.keepForRetry(member, room: room, token: token, error)
            }
        }
    }

    package func members(of room: String) async throws -> [PresenceMember] {
        try await self.sweep(room)
        let reply = try await self.redis.send(
            RESPCommand("ZRANGEBYSCORE", RoomKeys.presence(room), Self.nowMilliseconds(), "+inf"),
            routedBy: RoomKeys.presence(room))
        return (reply.elements ?? []).compactMap { value in
            value.bytes.flatMap { try? JSONDecoder().decode(PresenceMember.self, from: Data($0.readableBytesView)) }
        }.sorted { $0.nick < $1.nick }
    }

    /// Reports what an enter (or a restore) made.
    func reportEnter(_ member: PresenceMember, room: String, occupied: Bool, joined: Bool) {
        guard let observer = self.observer else { return }
        let now = PresenceTransition.now()
        if occupied { observer.presenceChanged(.roomOccupied(room: room, at: now)) }
        if joined { observer.presenceChanged(.memberJoined(member, room: room, at: now)) }
    }

    /// A script's `{a, b, …}` reply as integers.
    static func integers(_ reply: RESPValue) -> [Int64] {
        (reply.elements ?? []).map { value in
            if case .integer(let number) = value { number } else { 0 }
        }
    }

    // MARK: Service

    /// Refreshes this node's members every `ttl / 3` (and, with an observer, claims the due leaves) until graceful
    /// shutdown, then removes this node's members.
    package func run() async throws {
        let interval = self.ttl / 3
        await cancelWhenGracefulShutdown {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: interval)
                        guard !Task.isCancelled else { break }
                        await self.heartbeat()
                    }
                }
                group.addTask {
                    while !Task.isCancelled {
                        try? await Task.sleep(for: .seconds(1))
                        await self.retryPendingLeaves()
                    }
                }
                if self.observer != nil {
                    group.addTask {
                        while !Task.isCancelled {
                            let claimed = await self.claimDueLeaves()
                            if claimed < Self.claimLimit { try? await Task.sleep(for: self.pollInterval) }
                        }
                    }
                }
            }
        }
        await self.removeLocalMembers()
        await self.retryPendingLeaves(last: true)
    }
}
