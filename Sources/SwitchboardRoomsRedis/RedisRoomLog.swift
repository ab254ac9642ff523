import FoundationEssentials
package import NIOCore
package import SwitchboardRedis
package import SwitchboardRooms

/// Room history in Redis Streams, so every node serves the same history: one stream per room
/// (``RoomKeys/stream(_:)``), trimmed to ``RoomHistoryLimits/messagesPerRoom`` (`XADD … MAXLEN ~`) and to its age
/// limit (`XTRIM … MINID ~`), and expiring that long after its last message (`PEXPIRE`), so rooms nobody writes to
/// leave Redis by themselves; ids from Redis.
///
/// A message is stored and published by one Lua script (`XADD` then `PUBLISH` of the message with its id), run
/// with `EVALSHA`, so the order subscribers see is the stream's order on every node. The message's JSON comes from
/// ``RoomMessage`` (split where the id goes); the script only puts the id in. Ids are `<epoch>/<stream id>`; the
/// epoch lives in Redis beside the stream (``RoomKeys/epoch(_:)``, expiring with it) and is created again when the
/// stream was lost (Redis restarted empty, or the room went quiet past the age limit), so ids from before are
/// recognised as unknown and the client gets a gap.
package struct RedisRoomLog: RoomLog {
    private let redis: any RedisRouter
    /// ``post``, or its `SPUBLISH` variant in a cluster.
    private let postScript: RedisScript
    private let limits: RoomHistoryLimits
    private let clock: @Sendable () -> Int64

    /// KEYS: stream, channel, epoch key. ARGV: capacity, epoch candidate, JSON before the id, JSON after it, the
    /// age limit in milliseconds. The age bound is taken from the new id (Redis's clock), not from the node's.
    static let post = RedisScript(
        """
        redis.call('SET', KEYS[3], ARGV[2], 'NX')
        local epoch = redis.call('GET', KEYS[3])
        local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'm', ARGV[3] .. ARGV[4])
        local ms = tonumber(string.match(id, '^(%d+)'))
        redis.call('XTRIM', KEYS[1], 'MINID', '~', tostring(ms - tonumber(ARGV[5])))
        redis.call('PEXPIRE', KEYS[1], ARGV[5])
        redis.call('PEXPIRE', KEYS[3], ARGV[5])
        redis.call('PUBLISH', KEYS[2], ARGV[3] .. epoch .. '/' .. id .. ARGV[4])
        return id
        """)

    /// - Parameters:
    ///   - redis: Where the commands go: one Redis, shards, or a cluster (a room's on the shard of its channel).
    ///   - limits: Messages kept per room (approximately: Redis trims whole stream nodes), their age, and how many
    ///     are sent on a join without `since` (the embedded history's room and byte limits do not apply: Redis has
    ///     its own `maxmemory`).
    ///   - clock: Milliseconds since 1970: what is too old to send, by this node's clock.
    package init(
        redis: any RedisRouter, limits: RoomHistoryLimits = .init(),
        clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970 * 1000) }
    ) {
        self.redis = redis
        self.postScript = Self.post.variant(for: redis)
        self.limits = limits
        self.clock = clock
    }

    /// `client` is not used: Redis bounds a room's stream by length and age (`MAXLEN`, the key's expiry), and the
    /// node bounds what a client may send.
    package func post(
        room: String, nick: String, user: String?, client: ClientID?, text: String, promise: EventLoopPromise<Void>?
    ) {
        let message = RoomMessage(room: room, id: "", ts: self.clock(), nick: nick, user: user, text: text)
        let parts: (head: ByteBuffer, tail: ByteBuffer)
        do {
            parts = try message.jsonAroundID()
        } catch {
            promise?.fail(error)
            return
        }
        // Encoded here, once, into the bytes the connection writes (no argument array, no future per message).
        var call = RedisScriptCall(
            self.postScript, keys: [RoomKeys.stream(room), RoomChannel.name(of: room), RoomKeys.epoch(room)],
            argumentCount: 5, reservingCapacity: parts.head.readableBytes + parts.tail.readableBytes + 64)
        call.append(self.limits.messagesPerRoom)
        call.append(Self.newEpoch())
        call.append(parts.head)
        call.append(parts.tail)
        call.append(Int(self.limits.maxAgeMilliseconds))
        self.redis.evaluateNow(call, completion: promise)
    }

    package func history(of room: String, since: String?, limit: Int) async throws -> HistoryPage {
        let epoch = try await self.epoch(of: room)
        // Older messages may still be in the stream (trimming is approximate) but are past the age limit.
        let oldest = self.clock() - self.limits.maxAgeMilliseconds
        let recent = { () async throws -> [RoomMessage] in
            let reply = try await self.redis.send(
                RESPCommand(
                    "XREVRANGE", RoomKeys.stream(room), "+", String(max(oldest, 0)), "COUNT",
                    String(self.limits.shownOnJoin)), routedBy: RoomKeys.stream(room))
            return try Self.messages(reply, epoch: epoch).reversed()
        }
        guard let since else { return HistoryPage(messages: try await recent(), gap: false) }
        guard let (sinceEpoch, position) = RoomMessageID.split(since), sinceEpoch == epoch, position.count == 2,
            Int64(exactly: position[0]).map({ $0 >= oldest }) ?? false
        else {
            return HistoryPage(messages: try await recent(), gap: true)
        }
        let streamID = "\(position[0])-\(position[1])"
        // The client's last message must still be in the stream; otherwise what followed it may be trimmed.
        let last = try await self.redis.send(
            RESPCommand("XRANGE", RoomKeys.stream(room), streamID, streamID), routedBy: RoomKeys.stream(room))
        guard last.elements?.isEmpty == false else { return HistoryPage(messages: try await recent(), gap: true) }
        // One more than asked for tells whether more follow.
        let reply = try await self.redis.send(
            RESPCommand("XRANGE", RoomKeys.stream(room), "(" + streamID, "+", "COUNT", String(limit + 1)),
            routedBy: RoomKeys.stream(room))
        let messages = try Self.messages(reply, epoch: epoch)
        return HistoryPage(messages: Array(messages.prefix(limit)), gap: false, more: messages.count > limit)
    }

    /// The room's current epoch, created if Redis has none (first use, the stream expired, or Redis restarted
    /// empty): `SET … NX GET` answers the epoch there was, or nothing when it set ours.
    private func epoch(of room: String) async throws -> String {
        let candidate = Self.newEpoch()
        let reply = try await self.redis.send(
            RESPCommand(
                "SET", RoomKeys.epoch(room), candidate, "NX", "GET", "PX", String(self.limits.maxAgeMilliseconds)),
            routedBy: RoomKeys.epoch(room))
        switch reply {
        case .null, .bulkString(nil): return candidate
        default:
            guard let epoch = reply.string else {
                throw RedisError(.unexpectedReply, "SET of the history epoch answered \(reply)")
            }
            return epoch
        }
    }

    private static func newEpoch() -> String {
        String(UInt64.random(in: 1 << 40...UInt64.max >> 8), radix: 36)
    }

    /// Decodes an `XRANGE`/`XREVRANGE` reply, `[[id, ["m", json], …]`; entries that are not messages are skipped.
    static func messages(_ reply: RESPValue, epoch: String) throws -> [RoomMessage] {
        guard let entries = reply.elements else { throw RedisError(.unexpectedReply, "XRANGE answered \(reply)") }
        return entries.compactMap { entry in
            guard let parts = entry.elements, parts.count == 2, let id = parts[0].string,
                let fields = parts[1].elements, fields.count == 2, fields[0].string == "m", let json = fields[1].bytes
            else { return nil }
            return try? RoomMessage.decode(storedJSON: json, id: "\(epoch)/\(id)")
        }
    }
}
