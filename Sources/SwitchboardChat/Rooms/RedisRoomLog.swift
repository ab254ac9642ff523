import FoundationEssentials
public import NIOCore
public import SwitchboardRedis

/// Room history in Redis Streams, so every node serves the same history: one stream per room
/// (`switchboard:room:<name>`), trimmed with `XADD … MAXLEN ~ capacity`, ids from Redis.
///
/// A message is stored and published by one Lua script (`XADD` then `PUBLISH` of the message with its id), so the
/// order subscribers see is the stream's order on every node. Ids are `<epoch>/<stream id>`; the epoch lives in
/// Redis (`switchboard:epoch`) and is created again when Redis restarted empty, so ids from before are recognised
/// as unknown and the client gets a gap.
public struct RedisRoomLog: RoomLog {
    private let broker: RedisBroker
    private let capacity: Int
    private let shownOnJoin: Int

    static let epochKey = "switchboard:epoch"

    /// Lua: KEYS = stream, channel, epoch key; ARGV = capacity, nick, text, ts, epoch candidate, room.
    static let postScript = """
        redis.call('SET', KEYS[3], ARGV[5], 'NX')
        local epoch = redis.call('GET', KEYS[3])
        local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'nick', ARGV[2], 'text', ARGV[3], 'ts', ARGV[4])
        redis.call('PUBLISH', KEYS[2], cjson.encode({type = 'message', room = ARGV[6], id = epoch .. '/' .. id,
            ts = tonumber(ARGV[4]), nick = ARGV[2], text = ARGV[3]}))
        return id
        """

    /// - Parameters:
    ///   - broker: The Redis broker whose command connection carries the commands.
    ///   - capacity: Messages kept per room (approximately: Redis trims whole stream nodes).
    ///   - shownOnJoin: Messages sent on a join without `since`, or with a gap.
    public init(broker: RedisBroker, capacity: Int = 1000, shownOnJoin: Int = 100) {
        self.broker = broker
        self.capacity = capacity
        self.shownOnJoin = shownOnJoin
    }

    static func streamKey(_ room: String) -> String { "switchboard:room:\(room)" }

    public func post(room: String, nick: String, text: String, promise: EventLoopPromise<Void>?) {
        let ts = Int64(Date().timeIntervalSince1970 * 1000)
        let command = RESPCommand(
            "EVAL", Self.postScript, "3", Self.streamKey(room), RoomChannel.name(of: room), Self.epochKey,
            String(self.capacity), nick, text, String(ts), Self.newEpoch(), room)
        let sent = self.broker.sendNow(command).map { _ in }
        if let promise { sent.cascade(to: promise) }
    }

    public func history(of room: String, since: String?) async throws -> (messages: [RoomMessage], gap: Bool) {
        let epoch = try await self.epoch()
        let recent = { () async throws -> [RoomMessage] in
            let reply = try await self.broker.send(
                RESPCommand("XREVRANGE", Self.streamKey(room), "+", "-", "COUNT", String(self.shownOnJoin)))
            return try Self.messages(reply, room: room, epoch: epoch).reversed()
        }
        guard let since else { return (try await recent(), false) }
        guard let (sinceEpoch, position) = RoomMessageID.split(since), sinceEpoch == epoch, position.count == 2 else {
            return (try await recent(), true)
        }
        let streamID = "\(position[0])-\(position[1])"
        // The client's last message must still be in the stream; otherwise what followed it may be trimmed.
        let last = try await self.broker.send(RESPCommand("XRANGE", Self.streamKey(room), streamID, streamID))
        guard last.elements?.isEmpty == false else { return (try await recent(), true) }
        let reply = try await self.broker.send(
            RESPCommand("XRANGE", Self.streamKey(room), "(" + streamID, "+", "COUNT", String(self.capacity)))
        return (try Self.messages(reply, room: room, epoch: epoch), false)
    }

    /// The current epoch, created if Redis has none (first use, or restarted empty).
    private func epoch() async throws -> String {
        _ = try await self.broker.send(RESPCommand("SET", Self.epochKey, Self.newEpoch(), "NX"))
        guard let epoch = try await self.broker.send(RESPCommand("GET", Self.epochKey)).string else {
            throw RedisError(.unexpectedReply, "no history epoch in Redis")
        }
        return epoch
    }

    private static func newEpoch() -> String {
        String(UInt64.random(in: 1 << 40...UInt64.max >> 8), radix: 36)
    }

    /// Decodes an `XRANGE`/`XREVRANGE` reply: `[[id, [field, value, …]], …]`.
    static func messages(_ reply: RESPValue, room: String, epoch: String) throws -> [RoomMessage] {
        guard let entries = reply.elements else { throw RedisError(.unexpectedReply, "XRANGE answered \(reply)") }
        return entries.compactMap { entry in
            guard let parts = entry.elements, parts.count == 2, let id = parts[0].string,
                let fields = parts[1].elements
            else { return nil }
            var values: [String: String] = [:]
            for index in stride(from: 0, to: fields.count - 1, by: 2) {
                if let key = fields[index].string { values[key] = fields[index + 1].string }
            }
            guard let nick = values["nick"], let text = values["text"] else { return nil }
            return RoomMessage(
                room: room, id: "\(epoch)/\(id)", ts: values["ts"].flatMap { Int64($0) } ?? 0, nick: nick,
                text: text)
        }
    }
}
