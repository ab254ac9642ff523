import FoundationEssentials
package import Logging
import NIOConcurrencyHelpers
package import NIOCore
import ServiceLifecycle
package import SwitchboardChat
import SwitchboardLocks
package import SwitchboardRedis

/// Presence in Redis, correct across nodes: a sorted set per room (`switchboard:presence:<room>`) of members scored
/// by their expiry time.
///
/// Each node refreshes its own members every `ttl / 3`; a node that dies stops refreshing, and within `ttl` (plus
/// one sweep) its members are removed by any surviving node's sweep, which announces their leave. A node sweeps the
/// rooms where it has members, and the rooms of an index (`switchboard:presence:rooms`, each room scored by the
/// latest expiry of anyone who entered or was refreshed there) whose every member has expired: so a crashed node's
/// rooms are swept even where no other node has anyone. A change and its
/// announcement are one script (`ZADD`/`ZREM` and `PUBLISH`), queued on the client's connection under the same lock
/// as this node's record of its members, so the set, the announcements and every node's view follow the order in
/// which sockets entered and left, and a leave is announced only by whoever removed the member.
///
/// An observer hears of the changes no socket of this node made: a member a sweep removed (another node's, or this
/// node's own after an outage longer than `ttl`) leaves, and an own member a refresh had to store again enters.
/// With it, what counts sockets in Redis (webhooks) follows presence through crashes and outages.
///
/// Run it as a swift-service-lifecycle `Service`: ``run()`` refreshes until graceful shutdown, then removes this
/// node's members (announcing their leave) instead of leaving them to expire.
package final class RedisPresence: PresenceStore, Service {
    private let client: RedisClient
    private let ttl: Duration
    private let logger: Logger
    private let observer: (any ChatObserver)?
    /// room → this node's members there, refreshed by the heartbeat. Commands that change the set are queued while
    /// holding this lock.
    private let local = NIOLockedValueBox<[String: [String: PresenceMember]]>([:])

    /// The index of rooms with presence: room → the latest expiry of anyone stored there.
    static let roomsKey = "switchboard:presence:rooms"

    /// KEYS: set, channel, index. ARGV: expiry, member, announcement, room.
    static let enterScript = RedisScript(
        """
        redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
        redis.call('ZADD', KEYS[3], 'GT', ARGV[1], ARGV[4])
        redis.call('PUBLISH', KEYS[2], ARGV[3])
        return 1
        """)

    /// KEYS: set, channel, index. ARGV: expiry, room, then a member and its join announcement for each member.
    /// Refreshes each member; one a sweep had removed is stored and announced again. Returns the positions (from 0)
    /// of those members.
    static let refreshScript = RedisScript(
        """
        local restored = {}
        for i = 3, #ARGV, 2 do
          if redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) == 1 then
            redis.call('PUBLISH', KEYS[2], ARGV[i + 1])
            restored[#restored + 1] = (i - 3) / 2
          end
        end
        redis.call('ZADD', KEYS[3], 'GT', ARGV[1], ARGV[2])
        return restored
        """)

    /// KEYS: set, index. ARGV: room. Drops the room from the index once nobody is left in it.
    static let forgetScript = RedisScript(
        """
        if redis.call('ZCARD', KEYS[1]) == 0 then redis.call('ZREM', KEYS[2], ARGV[1]) end
        return 1
        """)

    /// KEYS: set, channel. ARGV: member, announcement. Announces only if this call removed the member.
    static let leaveScript = RedisScript(
        """
        if redis.call('ZREM', KEYS[1], ARGV[1]) == 1 then
          redis.call('PUBLISH', KEYS[2], ARGV[2])
          return 1
        end
        return 0
        """)

    /// - Parameters:
    ///   - client: The Redis client for the commands.
    ///   - ttl: How long a member stays listed without a refresh from its node (the bound on ghosts after a crash).
    ///   - logger: Where failed refreshes are logged (at debug level: the client logs the outage itself).
    ///   - observer: Told of the leaves a sweep makes and of the enters a refresh makes (see above).
    package init(
        client: RedisClient, ttl: Duration = .seconds(30), logger: Logger, observer: (any ChatObserver)? = nil
    ) {
        self.client = client
        self.ttl = ttl
        self.logger = logger
        self.observer = observer
    }

    static func key(_ room: String) -> String { "switchboard:presence:\(room)" }

    private func expiry() -> String {
        let now = Date().timeIntervalSince1970 * 1000
        let ttl = Double(self.ttl.components.seconds) * 1000 + Double(self.ttl.components.attoseconds) / 1e15
        return String(Int64(now + ttl))
    }

    private static func nowMilliseconds() -> String {
        String(Int64(Date().timeIntervalSince1970 * 1000))
    }

    // MARK: PresenceStore

    package func enter(_ member: PresenceMember, room: String, promise: EventLoopPromise<Void>?) {
        let stored = self.local.withLockedValue { local in
            local[room, default: [:]][member.id] = member
            return self.client.evaluateNow(
                Self.enterScript,
                keys: [
                    ByteBuffer(string: Self.key(room)), ByteBuffer(string: RoomChannel.name(of: room)),
                    ByteBuffer(string: Self.roomsKey),
                ],
                arguments: [
                    ByteBuffer(string: self.expiry()), ByteBuffer(string: member.json()),
                    PresenceFrame(room: room, event: "join", member: member).json(), ByteBuffer(string: room),
                ])
        }
        if let promise { stored.map { _ in }.cascade(to: promise) }
    }

    package func leave(_ member: PresenceMember, room: String) {
        self.local.withLockedValue { local in
            local[room]?[member.id] = nil
            if local[room]?.isEmpty == true { local[room] = nil }
            self.queueLeave(member, room: room)
        }
    }

    package func members(of room: String) async throws -> [PresenceMember] {
        try await self.sweep(room)
        let reply = try await self.client.send(
            RESPCommand("ZRANGEBYSCORE", Self.key(room), Self.nowMilliseconds(), "+inf"))
        return (reply.elements ?? []).compactMap { value in
            value.bytes.flatMap { try? JSONDecoder().decode(PresenceMember.self, from: Data($0.readableBytesView)) }
        }.sorted { $0.nick < $1.nick }
    }

    /// Queues the removal of `member` (stored as `stored`, its JSON by default) and the announcement of its leave.
    @discardableResult
    private func queueLeave(
        _ member: PresenceMember, stored: ByteBuffer? = nil, room: String
    ) -> EventLoopFuture<RESPValue> {
        self.client.evaluateNow(
            Self.leaveScript,
            keys: [ByteBuffer(string: Self.key(room)), ByteBuffer(string: RoomChannel.name(of: room))],
            arguments: [
                stored ?? ByteBuffer(string: member.json()),
                PresenceFrame(room: room, event: "leave", member: member).json(),
            ])
    }

    // MARK: Service

    /// Refreshes this node's members every `ttl / 3` until graceful shutdown, then removes them.
    package func run() async throws {
        let interval = self.ttl / 3
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                guard !Task.isCancelled else { break }
                await self.heartbeat()
            }
        }
        await self.removeLocalMembers()
    }

    /// Refreshes this node's members and sweeps the expired ones (announcing their leave): in the rooms where this
    /// node has members, and in the rooms of the index where everyone has expired.
    func heartbeat() async {
        let expiry = ByteBuffer(string: self.expiry())
        // Queued under the lock, so a refresh can never follow (and undo) a leave queued after it.
        let refreshes = self.local.withLockedValue { local in
            local.map { room, members in
                let members = Array(members.values)
                var arguments = [expiry, ByteBuffer(string: room)]
                for member in members {
                    arguments += [
                        ByteBuffer(string: member.json()),
                        PresenceFrame(room: room, event: "join", member: member).json(),
                    ]
                }
                let keys = [Self.key(room), RoomChannel.name(of: room), Self.roomsKey].map { ByteBuffer(string: $0) }
                return (room, members, self.client.evaluateNow(Self.refreshScript, keys: keys, arguments: arguments))
            }
        }
        for (room, members, refreshed) in refreshes {
            do {
                let restored = try await refreshed.value()
                for case .integer(let position) in restored.elements ?? [] where members.indices.contains(Int(position))
                {
                    self.observer?.entered(members[Int(position)], room: room)
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
    private func sweepAbandonedRooms() async throws {
        let due = try await self.client.send(
            RESPCommand("ZRANGEBYSCORE", Self.roomsKey, "-inf", "(" + Self.nowMilliseconds(), "LIMIT", "0", "1000"))
        for case .bulkString(let name?) in due.elements ?? [] {
            let room = String(buffer: name)
            try await self.sweep(room)
            _ = try await self.client.evaluateNow(
                Self.forgetScript, keys: [Self.key(room), Self.roomsKey].map { ByteBuffer(string: $0) },
                arguments: [ByteBuffer(string: room)]
            ).value()
        }
    }

    /// Removes members whose node stopped refreshing them; the script announces each leave once, from whichever
    /// node removed it, and that node tells the observer.
    private func sweep(_ room: String) async throws {
        let expired = try await self.client.send(
            RESPCommand("ZRANGEBYSCORE", Self.key(room), "-inf", "(" + Self.nowMilliseconds()))
        for value in expired.elements ?? [] {
            guard let bytes = value.bytes,
                let member = try? JSONDecoder().decode(PresenceMember.self, from: Data(bytes.readableBytesView))
            else { continue }
            if try await self.queueLeave(member, stored: bytes, room: room).value() == .integer(1) {
                self.observer?.left(member, room: room)
            }
        }
    }

    /// At shutdown: this node's members leave now rather than when their entries expire.
    private func removeLocalMembers() async {
        let removals = self.local.withLockedValue { local in
            defer { local = [:] }
            return local.flatMap { room, members in members.values.map { self.queueLeave($0, room: room) } }
        }
        for removal in removals { _ = try? await removal.value() }
    }
}
