import FoundationEssentials
import NIOConcurrencyHelpers
public import NIOCore
import SwitchboardPubSub
public import SwitchboardRedis

/// Someone in a room: one socket (the same nickname on two sockets is two members).
public struct PresenceMember: Codable, Hashable, Sendable {
    /// Unique per socket across nodes.
    public var id: String
    /// The nickname shown for this member.
    public var nick: String

    /// Creates a member.
    public init(id: String, nick: String) {
        self.id = id
        self.nick = nick
    }
}

/// A presence change, sent to the room's members as `{"type":"presence",…}`.
struct PresenceFrame: Codable {
    var type = "presence"
    var room: String
    /// `join` or `leave`.
    var event: String
    var member: PresenceMember
}

/// Who is in which room, across nodes. Join and leave events go out on the room's broker channel.
public protocol PresenceStore: Sendable {
    /// Records `member` in `room` and announces it.
    func enter(_ member: PresenceMember, room: String) async throws
    /// Removes `member` from `room` and announces it.
    func leave(_ member: PresenceMember, room: String)
    /// The members of `room`.
    func members(of room: String) async throws -> [PresenceMember]
}

extension PresenceStore {
    func announce(_ event: String, _ member: PresenceMember, room: String, broker: any Broker) {
        guard let data = try? JSONEncoder().encode(PresenceFrame(room: room, event: event, member: member)) else {
            return
        }
        broker.publish(ByteBuffer(bytes: data), to: RoomChannel.name(of: room), promise: nil)
    }
}

/// Presence in this process's memory (the embedded broker: one node).
final class InMemoryPresence: PresenceStore {
    private let broker: any Broker
    private let rooms = NIOLockedValueBox<[String: [String: PresenceMember]]>([:])

    init(broker: any Broker) {
        self.broker = broker
    }

    func enter(_ member: PresenceMember, room: String) async throws {
        self.rooms.withLockedValue { $0[room, default: [:]][member.id] = member }
        self.announce("join", member, room: room, broker: self.broker)
    }

    func leave(_ member: PresenceMember, room: String) {
        let removed = self.rooms.withLockedValue { rooms -> Bool in
            let removed = rooms[room]?.removeValue(forKey: member.id) != nil
            if rooms[room]?.isEmpty == true { rooms[room] = nil }
            return removed
        }
        if removed { self.announce("leave", member, room: room, broker: self.broker) }
    }

    func members(of room: String) async throws -> [PresenceMember] {
        self.rooms.withLockedValue { Array(($0[room] ?? [:]).values) }.sorted { $0.nick < $1.nick }
    }
}

/// Presence in Redis, correct across nodes: a sorted set per room (`switchboard:presence:<room>`) of members scored
/// by their expiry time. Each node refreshes its own members every `ttl / 3`; a node that dies stops refreshing, and
/// within `ttl` (plus one sweep) its members are removed by any surviving node's sweep, which announces their leave.
public final class RedisPresence: PresenceStore {
    private let broker: RedisBroker
    private let ttl: Duration
    /// room → this node's members there, refreshed by the heartbeat.
    private let local = NIOLockedValueBox<[String: [String: PresenceMember]]>([:])
    private let task: NIOLockedValueBox<RepeatedTask?> = .init(nil)

    /// - Parameters:
    ///   - broker: The Redis broker whose connections carry presence.
    ///   - ttl: How long a member stays listed without a refresh from its node (the bound on ghosts after a crash).
    ///   - eventLoop: Where the heartbeat runs.
    public init(broker: RedisBroker, ttl: Duration = .seconds(30), eventLoop: any EventLoop) {
        self.broker = broker
        self.ttl = ttl
        let interval = TimeAmount.nanoseconds(TimeAmount(ttl).nanoseconds / 3)
        let repeated = eventLoop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) {
            [weak self] _ in
            guard let self else { return eventLoop.makeSucceededVoidFuture() }
            return eventLoop.makeFutureWithTask { await self.heartbeat() }
        }
        self.task.withLockedValue { $0 = repeated }
    }

    /// Stops the heartbeat (at shutdown). Members are then no longer refreshed and expire within the TTL.
    public func stop() {
        self.task.withLockedValue { $0?.cancel() }
    }

    deinit {
        self.stop()
    }

    static func key(_ room: String) -> String { "switchboard:presence:\(room)" }

    /// The set member: JSON with sorted keys, since ZADD and ZREM need byte-identical strings and the encoder's
    /// key order is otherwise not stable.
    private static func encode(_ member: PresenceMember) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: (try? encoder.encode(member)) ?? Data(), as: UTF8.self)
    }

    private func expiry() -> String {
        let now = Date().timeIntervalSince1970 * 1000
        return String(
            Int64(now + Double(self.ttl.components.seconds) * 1000 + Double(self.ttl.components.attoseconds) / 1e15))
    }

    public func enter(_ member: PresenceMember, room: String) async throws {
        self.local.withLockedValue { $0[room, default: [:]][member.id] = member }
        try await self.broker.send(RESPCommand("ZADD", Self.key(room), self.expiry(), Self.encode(member)))
        self.announce("join", member, room: room, broker: self.broker)
    }

    public func leave(_ member: PresenceMember, room: String) {
        self.local.withLockedValue { local in
            local[room]?[member.id] = nil
            if local[room]?.isEmpty == true { local[room] = nil }
        }
        _ = self.broker.sendNow(RESPCommand("ZREM", Self.key(room), Self.encode(member)))
        self.announce("leave", member, room: room, broker: self.broker)
    }

    public func members(of room: String) async throws -> [PresenceMember] {
        try await self.sweep(room)
        let now = String(Int64(Date().timeIntervalSince1970 * 1000))
        let reply = try await self.broker.send(RESPCommand("ZRANGEBYSCORE", Self.key(room), now, "+inf"))
        return (reply.elements ?? []).compactMap { value in
            value.bytes.flatMap { try? JSONDecoder().decode(PresenceMember.self, from: Data($0.readableBytesView)) }
        }.sorted { $0.nick < $1.nick }
    }

    /// Refreshes this node's members and sweeps the expired ones (announcing their leave).
    func heartbeat() async {
        let rooms = self.local.withLockedValue { $0 }
        let expiry = self.expiry()
        for (room, members) in rooms {
            var arguments = [Self.key(room)]
            for member in members.values { arguments += [expiry, Self.encode(member)] }
            _ = try? await self.broker.send(RESPCommand("ZADD", arguments.map { ByteBuffer(string: $0) }))
            try? await self.sweep(room)
        }
    }

    /// Removes members whose node stopped refreshing them; whoever removes one announces its leave (ZREM tells
    /// which node removed it, so each leave is announced once).
    private func sweep(_ room: String) async throws {
        let now = String(Int64(Date().timeIntervalSince1970 * 1000))
        let expired = try await self.broker.send(RESPCommand("ZRANGEBYSCORE", Self.key(room), "-inf", "(" + now))
        for value in expired.elements ?? [] {
            guard let text = value.string,
                case .integer(1) = try await self.broker.send(RESPCommand("ZREM", Self.key(room), text)),
                let member = try? JSONDecoder().decode(PresenceMember.self, from: Data(text.utf8))
            else { continue }
            self.announce("leave", member, room: room, broker: self.broker)
        }
    }
}
