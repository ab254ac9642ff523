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
/// one sweep) its members are removed by any surviving node's sweep, which announces their leave. A change and its
/// announcement are one script (`ZADD`/`ZREM` and `PUBLISH`), queued on the client's connection under the same lock
/// as this node's record of its members, so the set, the announcements and every node's view follow the order in
/// which sockets entered and left, and a leave is announced only by whoever removed the member.
///
/// Run it as a swift-service-lifecycle `Service`: ``run()`` refreshes until graceful shutdown, then removes this
/// node's members (announcing their leave) instead of leaving them to expire.
package final class RedisPresence: PresenceStore, Service {
    private let client: RedisClient
    private let ttl: Duration
    private let logger: Logger
    /// room → this node's members there, refreshed by the heartbeat. Commands that change the set are queued while
    /// holding this lock.
    private let local = NIOLockedValueBox<[String: [String: PresenceMember]]>([:])

    /// KEYS: set, channel. ARGV: expiry, member, announcement.
    static let enterScript = RedisScript(
        """
        redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
        redis.call('PUBLISH', KEYS[2], ARGV[3])
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
    package init(client: RedisClient, ttl: Duration = .seconds(30), logger: Logger) {
        self.client = client
        self.ttl = ttl
        self.logger = logger
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
                keys: [ByteBuffer(string: Self.key(room)), ByteBuffer(string: RoomChannel.name(of: room))],
                arguments: [
                    ByteBuffer(string: self.expiry()), ByteBuffer(string: member.json()),
                    PresenceFrame(room: room, event: "join", member: member).json(),
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

    /// Refreshes this node's members and sweeps the expired ones (announcing their leave).
    func heartbeat() async {
        let expiry = self.expiry()
        // Queued under the lock, so a refresh can never follow (and undo) a leave queued after it.
        let refreshes = self.local.withLockedValue { local in
            local.map { room, members in
                var arguments = [Self.key(room)]
                for member in members.values { arguments += [expiry, member.json()] }
                return (room, self.client.sendNow(RESPCommand("ZADD", arguments.map { ByteBuffer(string: $0) })))
            }
        }
        for (room, refreshed) in refreshes {
            do {
                _ = try await refreshed.value()
                try await self.sweep(room)
            } catch {
                self.logger.debug("Presence refresh failed", metadata: ["room": "\(room)", "error": "\(error)"])
            }
        }
    }

    /// Removes members whose node stopped refreshing them; the script announces each leave once, from whichever
    /// node removed it.
    private func sweep(_ room: String) async throws {
        let expired = try await self.client.send(
            RESPCommand("ZRANGEBYSCORE", Self.key(room), "-inf", "(" + Self.nowMilliseconds()))
        for value in expired.elements ?? [] {
            guard let bytes = value.bytes,
                let member = try? JSONDecoder().decode(PresenceMember.self, from: Data(bytes.readableBytesView))
            else { continue }
            _ = try await self.queueLeave(member, stored: bytes, room: room).value()
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
