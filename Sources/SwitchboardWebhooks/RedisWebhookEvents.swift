import FoundationEssentials
package import Logging
import NIOCore
import ServiceLifecycle
package import SwitchboardChat
import SwitchboardLocks
package import SwitchboardRedis

/// ``WebhookEvents`` for several nodes on one Redis: rooms and members are counted in Redis, so each event is sent
/// once per cluster: by the node whose change made it, or for a leave by the node that claims it when it is due.
///
/// A socket's enter and leave run one script each, which records the socket in the room's set of sockets (over
/// every node) and counts the member's, and says whether this change made the room occupied or the member joined.
/// A leave that reaches zero sets a marker with a token and puts the event, due after the delay, in a sorted set
/// that every node polls (`switchboard:hooks:due`): whichever node claims it when due sends it if the marker is still
/// its token. An enter on any node in the meantime deletes the marker, and then neither the leave nor the return is
/// sent. So a leave is sent even when the node where it happened stopped or crashed during the delay. `connect`,
/// `disconnect` and `message` are the socket's own node's.
///
/// The scripts change the counts only when the socket's membership changes, so telling one twice is harmless. That
/// is what makes a crashed node's sockets leave: `RedisPresence` sweeps them out of presence once their entries
/// expire, on whichever node removes them, and tells this observer there; and a node back from an outage longer
/// than the presence TTL stores its members again and tells it of their return.
///
/// Run it as a `Service`: ``run()`` polls for due leaves until graceful shutdown.
package final class RedisWebhookEvents: ChatObserver, Service {
    /// KEYS: members hash, sockets set, member's marker, room's marker. ARGV: member key, socket id.
    /// Returns {occupied, joined}: 1 when this enter made the room occupied or the member joined.
    static let enterScript = RedisScript(
        """
        if redis.call('SADD', KEYS[2], ARGV[2]) == 0 then return {0, 0} end
        local n = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
        local occupied = 0
        local joined = 0
        if redis.call('SCARD', KEYS[2]) == 1 and redis.call('DEL', KEYS[4]) == 0 then occupied = 1 end
        if n == 1 and redis.call('DEL', KEYS[3]) == 0 then joined = 1 end
        return {occupied, joined}
        """)

    /// KEYS: as enter, and the due set. ARGV: member key, socket id, this leave's token, marker lifetime (ms), due
    /// time (ms), the `member_left` event's JSON, the `room_vacated` event's JSON.
    /// Returns {left, vacated}: 1 when the member's or the room's count reached zero (a marker and a due event are
    /// then set; the room's due half a millisecond after the member's, so it is claimed after it).
    static let leaveScript = RedisScript(
        """
        if redis.call('SREM', KEYS[2], ARGV[2]) == 0 then return {0, 0} end
        local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
        if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
        local left = 0
        local vacated = 0
        if n <= 0 then
          redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
          redis.call('ZADD', KEYS[5], ARGV[5], ARGV[3] .. '\\n' .. KEYS[3] .. '\\n' .. ARGV[6])
          left = 1
        end
        if redis.call('SCARD', KEYS[2]) == 0 then
          redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
          redis.call('ZADD', KEYS[5], tonumber(ARGV[5]) + 0.5, ARGV[3] .. '\\n' .. KEYS[4] .. '\\n' .. ARGV[7])
          vacated = 1
        end
        return {left, vacated}
        """)

    /// KEYS: the due set. ARGV: now (ms), the most to claim. Takes the due entries (`token \n marker \n event`, the
    /// event's JSON on one line) out of the set and returns, in order, the events whose marker is still their token
    /// (deleting the marker).
    static let claimScript = RedisScript(
        """
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
        local events = {}
        for _, entry in ipairs(due) do
          redis.call('ZREM', KEYS[1], entry)
          local token, marker, event = string.match(entry, '^([^\\n]*)\\n(.*)\\n([^\\n]*)$')
          if token and redis.call('GET', marker) == token then
            redis.call('DEL', marker)
            events[#events + 1] = event
          end
        end
        return events
        """)

    /// The sorted set of leaves waiting for their delay, scored by when they are due.
    static let dueKey = "switchboard:hooks:due"
    /// Claimed at most per poll (the next poll comes at once when a poll took this many).
    static let claimLimit = 1000

    private let dispatcher: WebhookDispatcher
    private let client: RedisClient
    private let delay: TimeAmount
    private let pollInterval: Duration
    private let logger: Logger

    /// - Parameter pollInterval: How often due leaves are looked for: a leave goes out this much after its delay
    ///   at worst. By default a quarter of the delay, at most 250 ms.
    package init(
        dispatcher: WebhookDispatcher, client: RedisClient, pollInterval: Duration? = nil, logger: Logger
    ) {
        self.dispatcher = dispatcher
        self.client = client
        self.delay = dispatcher.configuration.leaveDelay
        self.pollInterval =
            pollInterval ?? min(.milliseconds(250), .nanoseconds(max(self.delay.nanoseconds / 4, 1_000_000)))
        self.logger = logger
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

    package func entered(_ member: PresenceMember, room: String) {
        let keys = Self.keys(room: room, member: member)
        // Replies come in the order the scripts were queued on the connection: events keep this node's order.
        self.client.evaluateNow(
            Self.enterScript, keys: keys.map { ByteBuffer(string: $0) },
            arguments: [ByteBuffer(string: Self.memberKey(member)), ByteBuffer(string: member.id)]
        ).whenSuccess { reply in
            let flags = Self.flags(reply)
            guard flags.count == 2 else { return }
            if flags[0] == 1 { self.dispatcher.send(WebhookEvent(name: .roomOccupied, room: room)) }
            if flags[1] == 1 {
                self.dispatcher.send(
                    WebhookEvent(.memberJoined, member, room: room))
            }
        }
    }

    package func left(_ member: PresenceMember, room: String) {
        let keys = Self.keys(room: room, member: member) + [Self.dueKey]
        let token = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        let time = WebhookEvent.now()
        let delay = self.delay.nanoseconds / 1_000_000
        // A marker outlives its delay by an hour: a leave due while no node runs is still sent (and still cancelled
        // by a return) when one starts within the hour.
        let lifetime = delay + 3_600_000
        let events = [
            WebhookEvent(.memberLeft, member, room: room, time: time),
            WebhookEvent(name: .roomVacated, room: room, time: time),
        ].map { String(decoding: (try? Self.encoder.encode($0)) ?? Data(), as: UTF8.self) }
        self.client.evaluateNow(
            Self.leaveScript, keys: keys.map { ByteBuffer(string: $0) },
            arguments: [Self.memberKey(member), member.id, token, String(lifetime), String(time + delay)]
                .map { ByteBuffer(string: $0) } + events.map { ByteBuffer(string: $0) }
        ).whenFailure { error in
            self.logger.warning(
                "A leave was not counted for webhooks", metadata: ["room": "\(room)", "error": "\(error)"])
        }
    }

    // MARK: Service

    /// Polls for due leaves until graceful shutdown (those due later are left for the other nodes, or this one when
    /// it starts again).
    package func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                let claimed = await self.claimDue()
                if claimed < Self.claimLimit { try? await Task.sleep(for: self.pollInterval) }
            }
        }
    }

    /// Claims the due leaves and sends them; how many entries were due.
    func claimDue() async -> Int {
        do {
            let reply = try await self.client.evaluateNow(
                Self.claimScript, keys: [ByteBuffer(string: Self.dueKey)],
                arguments: [
                    ByteBuffer(string: String(WebhookEvent.now())), ByteBuffer(string: String(Self.claimLimit)),
                ]
            ).value()
            let events = reply.elements ?? []
            for case .bulkString(let json?) in events {
                guard let event = try? Self.decoder.decode(WebhookEvent.self, from: Data(json.readableBytesView))
                else { continue }
                self.dispatcher.send(event)
            }
            return events.count
        } catch {
            self.logger.debug("Polling for due webhook leaves failed", metadata: ["error": "\(error)"])
            return 0
        }
    }

    private static let encoder = JSONEncoder()
    private static let decoder = JSONDecoder()

    /// A script's `{a, b}` reply as integers.
    private static func flags(_ reply: RESPValue) -> [Int64] {
        (reply.elements ?? []).map { value in
            if case .integer(let number) = value { number } else { 0 }
        }
    }

    static func keys(room: String, member: PresenceMember) -> [String] {
        let base = "switchboard:hooks:\(room)"
        return ["\(base):members", "\(base):sockets", "\(base):leaving:\(Self.memberKey(member))", "\(base):vacating"]
    }

    static func memberKey(_ member: PresenceMember) -> String {
        member.user.map { "user:\($0)" } ?? "socket:\(member.id)"
    }
}
