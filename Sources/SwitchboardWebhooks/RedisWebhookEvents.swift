package import NIOCore
package import SwitchboardChat
package import SwitchboardRedis

/// ``WebhookEvents`` for several nodes on one Redis: rooms and members are counted in Redis, so each event is sent
/// once per cluster, by the node whose change made it.
///
/// A socket's enter and leave run one script each, which records the socket in the room's set of sockets (over
/// every node) and counts the member's, and says whether this change made the room occupied or the member joined,
/// or (at zero) starts the delay: a marker with a token of this node. When the delay has passed this node sends the
/// leave if its marker is still there; an enter on any node in the meantime deletes the marker, and then neither
/// the leave nor the return is sent. `connect` and `disconnect` are the socket's own node's.
///
/// The scripts change the counts only when the socket's membership changes, so telling one twice is harmless. That
/// is what makes a crashed node's sockets leave: `RedisPresence` sweeps them out of presence once their entries
/// expire, on whichever node removes them, and tells this observer there; and a node back from an outage longer
/// than the presence TTL stores its members again and tells it of their return.
package final class RedisWebhookEvents: ChatObserver {
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

    /// KEYS: as enter. ARGV: member key, socket id, this leave's token, marker lifetime (ms).
    /// Returns {left, vacated}: 1 when the member's or the room's count reached zero (a marker is then set).
    static let leaveScript = RedisScript(
        """
        if redis.call('SREM', KEYS[2], ARGV[2]) == 0 then return {0, 0} end
        local n = redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
        if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
        local left = 0
        local vacated = 0
        if n <= 0 then
          redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
          left = 1
        end
        if redis.call('SCARD', KEYS[2]) == 0 then
          redis.call('SET', KEYS[4], ARGV[3], 'PX', ARGV[4])
          vacated = 1
        end
        return {left, vacated}
        """)

    /// KEYS: a marker. ARGV: the token. 1 if the marker was this token's (and is now gone).
    static let fireScript = RedisScript(
        """
        if redis.call('GET', KEYS[1]) == ARGV[1] then
          redis.call('DEL', KEYS[1])
          return 1
        end
        return 0
        """)

    private let dispatcher: WebhookDispatcher
    private let client: RedisClient
    private let eventLoop: any EventLoop
    private let delay: TimeAmount

    package init(dispatcher: WebhookDispatcher, client: RedisClient, eventLoop: any EventLoop) {
        self.dispatcher = dispatcher
        self.client = client
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
        let keys = Self.keys(room: room, member: member)
        let token = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        let time = WebhookEvent.now()
        let lifetime = self.delay.nanoseconds / 1_000_000 + 60_000
        self.client.evaluateNow(
            Self.leaveScript, keys: keys.map { ByteBuffer(string: $0) },
            arguments: [Self.memberKey(member), member.id, token, String(lifetime)].map { ByteBuffer(string: $0) }
        ).whenSuccess { reply in
            let flags = Self.flags(reply)
            guard flags.count == 2 else { return }
            // The member's leave first, then the room's: the same delay, scheduled in that order.
            var pending: [(marker: String, event: WebhookEvent)] = []
            if flags[0] == 1 {
                pending.append(
                    (
                        keys[2],
                        WebhookEvent(.memberLeft, member, room: room, time: time)
                    ))
            }
            if flags[1] == 1 { pending.append((keys[3], WebhookEvent(name: .roomVacated, room: room, time: time))) }
            guard !pending.isEmpty else { return }
            let due = pending
            self.eventLoop.scheduleTask(in: self.delay) { self.fire(due, token: token) }
        }
    }

    /// Sends each pending event whose marker is still this leave's, in order.
    private func fire(_ pending: [(marker: String, event: WebhookEvent)], token: String) {
        for (marker, event) in pending {
            self.client.evaluateNow(
                Self.fireScript, keys: [ByteBuffer(string: marker)], arguments: [ByteBuffer(string: token)]
            ).whenSuccess { reply in
                if reply == .integer(1) { self.dispatcher.send(event) }
            }
        }
    }

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
