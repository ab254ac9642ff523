import FoundationEssentials
import Logging
import NIOConcurrencyHelpers
import NIOCore
import SwitchboardLocks
import SwitchboardRedis
import SwitchboardRooms

/// Leaves: queued (with their delayed transitions), swept when their node stopped refreshing them, and reported by
/// whichever node claims them when due.
extension RedisPresence {
    /// A leave waiting for its delay, as the due set keeps it: which room and marker, the token the marker must still
    /// hold, and the transition to report.
    struct DueLeave: Codable {
        var room: String
        /// The marker's field: `room`, or `member:<key>`.
        var field: String
        var token: String
        var event: String
        var member: PresenceMember?
        var at: Int64
        /// Queued by a retry whose first try may have run in Redis (its answer lost): reported only if the markers
        /// say that try made the transition; a `member_left` they do not confirm is counted as abandoned.
        var retried: Bool? = nil

        var transition: PresenceTransition? {
            switch (self.event, self.member) {
            case ("member_left", let member?): .memberLeft(member, room: self.room, at: self.at)
            case ("room_vacated", _): .roomVacated(room: self.room, at: self.at)
            default: nil
            }
        }
    }

    /// A marker token for a leave: `""` without an observer (no transitions are made then).
    func leaveToken() -> String {
        self.observer == nil ? "" : String(UInt64.random(in: 1...UInt64.max), radix: 36)
    }

    /// Queues the removal of `member` (stored as `stored`, its JSON by default), the announcement of its leave and,
    /// when it ends the member's or the room's presence, the delayed transitions; whether this call removed it.
    ///
    /// A `retry` (with the first try's `token`) that finds the member gone still queues both transitions: the first
    /// try may have run in Redis with its answer lost, and its markers, set with the same token, decide.
    @discardableResult
    func queueLeave(
        _ member: PresenceMember, stored: ByteBuffer? = nil, room: String, token: String? = nil, retry: Bool = false
    ) -> EventLoopFuture<Bool> {
        let token = token ?? self.leaveToken()
        let time = PresenceTransition.now()
        let delay = self.leaveDelay.nanoseconds / 1_000_000
        let removed = self.redis.evaluateNow(
            self.scripts.leave, keys: Self.keys(room),
            arguments: [
                stored ?? ByteBuffer(string: member.json()),
                PresenceFrame(room: room, event: "leave", member: member).json(),
                ByteBuffer(string: member.transitionKey), ByteBuffer(string: token),
                ByteBuffer(string: String(delay + Self.markerLifetime)),
            ])
        return removed.flatMap { reply in
            let flags = Self.integers(reply)
            let removedNow = flags.count == 3 && flags[0] == 1
            guard removedNow || retry, !token.isEmpty else { return removed.eventLoop.makeSucceededFuture(removedNow) }
            var due: [DueLeave] = []
            if !removedNow || flags[1] == 1 {
                due.append(
                    DueLeave(
                        room: room, field: "member:\(member.transitionKey)", token: token, event: "member_left",
                        member: member, at: time, retried: removedNow ? nil : true))
            }
            if !removedNow || flags[2] == 1 {
                due.append(
                    DueLeave(
                        room: room, field: "room", token: token, event: "room_vacated", member: nil, at: time,
                        retried: removedNow ? nil : true))
            }
            // The due set is the cluster's key: its own command. The room's leave is due half a millisecond after the
            // member's, so it is claimed after it.
            let dueKey = RoomKeys.dueLeaves(bucket: RoomKeys.bucket(of: room))
            var arguments = [dueKey]
            for (index, leave) in due.enumerated() {
                guard let json = try? JSONEncoder().encode(leave) else { continue }
                arguments += [
                    String(Double(time + delay) + Double(index) * 0.5), String(decoding: json, as: UTF8.self),
                ]
            }
            guard arguments.count > 1 else { return removed.eventLoop.makeSucceededFuture(removedNow) }
            let add = RESPCommand("ZADD", arguments.map { ByteBuffer(string: $0) })
            return self.redis.sendNow(add, routedBy: dueKey).map { _ in
                removedNow
            }
        }
    }

    /// Claims the due leaves of every bucket (atomically: each by one node) and reports those whose marker is still
    /// theirs; the most entries one bucket had due.
    func claimDueLeaves() async -> Int {
        var most = 0
        for bucket in 0..<RoomKeys.buckets {
            most = max(most, await self.claimDueLeaves(bucket: bucket))
        }
        return most
    }

    private func claimDueLeaves(bucket: Int) async -> Int {
        let dueKey = RoomKeys.dueLeaves(bucket: bucket)
        do {
            let reply = try await self.redis.evaluateNow(
                Self.claimScript, keys: [ByteBuffer(string: dueKey)],
                arguments: [
                    ByteBuffer(string: Self.nowMilliseconds()), ByteBuffer(string: String(Self.claimLimit)),
                ]
            ).value()
            let entries = reply.elements ?? []
            for case .bulkString(let json?) in entries {
                guard let leave = try? JSONDecoder().decode(DueLeave.self, from: Data(json.readableBytesView)),
                    let transition = leave.transition
                else { continue }
                let confirmed = try await self.redis.evaluateNow(
                    Self.confirmScript, keys: [ByteBuffer(string: RoomKeys.markers(leave.room))],
                    arguments: [ByteBuffer(string: leave.field), ByteBuffer(string: leave.token)]
                ).value()
                if confirmed == .integer(1) {
                    self.observer?.presenceChanged(transition)
                } else if leave.retried == true, leave.event == "member_left" {
                    // The leave's first try did not run in Redis (or Redis lost its member): it cannot be reported.
                    self.abandon(
                        [PendingLeave(member: leave.member!, room: leave.room, token: leave.token, since: .now())],
                        "Redis no longer held the member after the outage (restarted empty, or swept after the TTL)")
                }
            }
            return entries.count
        } catch {
            self.logger.debug("Claiming due presence leaves failed", metadata: ["error": "\(error)"])
            return 0
        }
    }

    /// Removes members whose node stopped refreshing them; the script announces each leave once, from whichever
    /// node removed it, and counts it for the transitions.
    func sweep(_ room: String) async throws {
        let expired = try await self.redis.send(
            RESPCommand("ZRANGEBYSCORE", RoomKeys.presence(room), "-inf", "(" + Self.nowMilliseconds()),
            routedBy: RoomKeys.presence(room))
        for value in expired.elements ?? [] {
            guard let bytes = value.bytes,
                let member = try? JSONDecoder().decode(PresenceMember.self, from: Data(bytes.readableBytesView))
            else { continue }
            _ = try await self.queueLeave(member, stored: bytes, room: room).value()
        }
    }

    /// Refreshes this node's members and sweeps the expired ones: in the rooms where this node has members, and in
    /// the rooms of the index where everyone has expired.
    func heartbeat() async {
        let expiry = self.expiry()
        // Queued under the lock, so a refresh can never follow (and undo) a leave queued after it.
        let refreshes = self.local.withLockedValue { local in
            local.map { room, members in
                let members = Array(members.values)
                var arguments = [ByteBuffer(string: expiry)]
                for member in members {
                    arguments += [
                        ByteBuffer(string: member.json()),
                        PresenceFrame(room: room, event: "join", member: member).json(),
                        ByteBuffer(string: member.transitionKey),
                    ]
                }
                let refreshed = self.redis.evaluateNow(
                    self.scripts.refresh, keys: Self.keys(room), arguments: arguments)
                let index = RoomKeys.presenceRooms(bucket: RoomKeys.bucket(of: room))
                self.redis.sendNow(RESPCommand("ZADD", index, "GT", expiry, room), routedBy: index).whenFailure { _ in }
                return (room, members, refreshed)
            }
        }
        for (room, members, refreshed) in refreshes {
            do {
                for restored in try await refreshed.value().elements ?? [] {
                    let flags = Self.integers(restored)
                    guard flags.count == 3, members.indices.contains(Int(flags[0])) else { continue }
                    self.reportEnter(members[Int(flags[0])], room: room, occupied: flags[1] == 1, joined: flags[2] == 1)
                }
                try await self.sweep(room)
            } catch {
                self.logger.debug("Presence refresh failed", metadata: ["room": "\(room)", "error": "\(error)"])
            }
        }
        do {
            try await self.sweepAbandonedRooms()
        } catch {
            self.logger.debug("Presence sweep failed", metadata: ["error": "\(error)"])
        }
    }

    /// Sweeps the rooms whose members have all expired (at most 1,000 a heartbeat), and forgets the empty ones.
    ///
    /// The index is another slot than the rooms', so "empty, then forget" is two commands: an enter between them
    /// drops a room with a member from the index until its node's next refresh (a third of the TTL) adds it back.
    private func sweepAbandonedRooms() async throws {
        for bucket in 0..<RoomKeys.buckets {
            let index = RoomKeys.presenceRooms(bucket: bucket)
            let due = try await self.redis.send(
                RESPCommand("ZRANGEBYSCORE", index, "-inf", "(" + Self.nowMilliseconds(), "LIMIT", "0", "1000"),
                routedBy: index)
            for case .bulkString(let name?) in due.elements ?? [] {
                let room = String(buffer: name)
                try await self.sweep(room)
                let presence = RoomKeys.presence(room)
                if try await self.redis.send(RESPCommand("ZCARD", presence), routedBy: presence) == .integer(0) {
                    try await self.redis.send(RESPCommand("ZREM", index, room), routedBy: index)
                }
            }
        }
    }

    /// At shutdown: this node's members leave now rather than when their entries expire.
    func removeLocalMembers() async {
        let removals = self.local.withLockedValue { local in
            defer { local = [:] }
            return local.flatMap { room, members in members.values.map { self.queueLeave($0, room: room) } }
        }
        for removal in removals { _ = try? await removal.value() }
    }

    // MARK: Leaves Redis did not take

    /// A leave to try again.
    struct PendingLeave {
        var member: PresenceMember
        var room: String
        /// The first try's marker token: a retry uses it again.
        var token: String
        var since: NIODeadline
    }

    func keepForRetry(_ member: PresenceMember, room: String, token: String, _ error: any Error) {
        let leave = PendingLeave(member: member, room: room, token: token, since: .now())
        let kept = self.pendingLeaves.withLockedValue { pending -> Bool in
            guard pending.count < Self.maxPendingLeaves else { return false }
            pending.append(leave)
            return true
        }
        if kept {
            self.logger.debug(
                "A presence leave failed; kept to try again", metadata: ["room": "\(room)", "error": "\(error)"])
        } else {
            self.abandon([leave], "too many leaves are waiting")
        }
    }

    /// Tries the kept leaves again, in order; those Redis still does not take are kept (unless `last`, at shutdown, or
    /// kept longer than the markers live).
    func retryPendingLeaves(last: Bool = false) async {
        let pending = self.pendingLeaves.withLockedValue { pending in
            defer { pending = [] }
            return pending
        }
        guard !pending.isEmpty else { return }
        var failed: [PendingLeave] = []
        for (index, leave) in pending.enumerated() {
            do {
                // Removed now, or found gone: then the due transitions decide (see queueLeave).
                _ = try await self.queueLeave(leave.member, room: leave.room, token: leave.token, retry: true).value()
            } catch {
                // Redis is still away: the rest waits for the next try, in order.
                failed = Array(pending[index...])
                break
            }
        }
        let maxAge = TimeAmount.milliseconds(Self.markerLifetime)
        let expired = last ? failed : failed.filter { .now() - $0.since > maxAge }
        if !expired.isEmpty {
            self.abandon(expired, last ? "Redis was still away at shutdown" : "Redis was away longer than an hour")
        }
        let kept = last ? [] : failed.filter { .now() - $0.since <= maxAge }
        if !kept.isEmpty { self.pendingLeaves.withLockedValue { $0.insert(contentsOf: kept, at: 0) } }
    }

    func abandon(_ leaves: [PendingLeave], _ reason: String) {
        for _ in leaves { self.counters?.count(.leaveAbandoned) }
        self.logger.warning(
            "Presence leaves abandoned: not announced or reported",
            metadata: [
                "leaves": "\(leaves.count)", "reason": "\(reason)",
                "rooms": "\(Set(leaves.map(\.room)).sorted().prefix(10).joined(separator: ","))",
            ])
    }
}
