import SwitchboardRedis

/// The scripts of ``RedisPresence``: each change of a room's presence, its announcement and the transitions it
/// makes are one script on the room's keys (all under its hash tag), so the set, the announcements, the counts and
/// every node's view follow the order in which sockets entered and left.
///
/// A member's counts are by ``SwitchboardRooms/PresenceMember/transitionKey`` (a user over all their sockets, or an
/// anonymous socket) and change only when the member set itself changes, so a change told twice (a sweep and a
/// late goodbye) counts once. Markers (`room`, `member:<key>`, in one hash) stand for leaves waiting for their
/// delay: an enter deletes its marker, and then neither the leave nor the return is reported.
extension RedisPresence {
    /// KEYS: presence, counts, markers, channel. ARGV: expiry, member JSON, join announcement, member key.
    /// Returns {stored, occupied, joined}: 1 when this call stored the member, made the room occupied, the member
    /// joined (no marker of a leave was waiting).
    static let enterScript = RedisScript(
        """
        if redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2]) == 0 then return {0, 0, 0} end
        redis.call('PUBLISH', KEYS[4], ARGV[3])
        local occupied = 0
        local joined = 0
        if redis.call('ZCARD', KEYS[1]) == 1 and redis.call('HDEL', KEYS[3], 'room') == 0 then occupied = 1 end
        if redis.call('HINCRBY', KEYS[2], ARGV[4], 1) == 1 and redis.call('HDEL', KEYS[3], 'member:' .. ARGV[4]) == 0 then
          joined = 1
        end
        return {1, occupied, joined}
        """)

    /// KEYS: presence, counts, markers, channel. ARGV: member JSON, leave announcement, member key, this leave's
    /// token ('' when transitions are not reported), the markers' lifetime (ms).
    /// Returns {removed, left, vacated}: 1 when this call removed the member, when the member's or the room's count
    /// reached zero (a marker with the token is then set, and the caller queues the leave in the due set).
    static let leaveScript = RedisScript(
        """
        if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return {0, 0, 0} end
        redis.call('PUBLISH', KEYS[4], ARGV[2])
        local left = 0
        local vacated = 0
        if redis.call('HINCRBY', KEYS[2], ARGV[3], -1) <= 0 then
          redis.call('HDEL', KEYS[2], ARGV[3])
          left = 1
          if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], 'member:' .. ARGV[3], ARGV[4]) end
        end
        if redis.call('ZCARD', KEYS[1]) == 0 then
          vacated = 1
          if ARGV[4] ~= '' then redis.call('HSET', KEYS[3], 'room', ARGV[4]) end
        end
        if ARGV[4] ~= '' and (left == 1 or vacated == 1) then redis.call('PEXPIRE', KEYS[3], ARGV[5]) end
        return {1, left, vacated}
        """)

    /// KEYS: presence, counts, markers, channel. ARGV: expiry, then per member its JSON, its join announcement and
    /// its key. Refreshes each member; one a sweep had removed is stored and announced again, as an enter.
    /// Returns, per member stored again, {position from 0, occupied, joined}.
    static let refreshScript = RedisScript(
        """
        local restored = {}
        for i = 2, #ARGV, 3 do
          if redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i]) == 1 then
            redis.call('PUBLISH', KEYS[4], ARGV[i + 1])
            local occupied = 0
            local joined = 0
            if redis.call('ZCARD', KEYS[1]) == 1 and redis.call('HDEL', KEYS[3], 'room') == 0 then occupied = 1 end
            if redis.call('HINCRBY', KEYS[2], ARGV[i + 2], 1) == 1
              and redis.call('HDEL', KEYS[3], 'member:' .. ARGV[i + 2]) == 0 then joined = 1 end
            restored[#restored + 1] = {(i - 2) / 3, occupied, joined}
          end
        end
        return restored
        """)

    /// KEYS: markers. ARGV: field, token. Deletes the marker and answers 1 if it is still this leave's: no return
    /// came during the delay.
    static let confirmScript = RedisScript(
        """
        if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
          redis.call('HDEL', KEYS[1], ARGV[1])
          return 1
        end
        return 0
        """)

    /// KEYS: the due set. ARGV: now (ms), the most to claim. Takes the due entries out of the set, atomically, so
    /// each is claimed by one node, and returns them in order.
    static let claimScript = RedisScript(
        """
        local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
        for _, entry in ipairs(due) do redis.call('ZREM', KEYS[1], entry) end
        return due
        """)

    /// The scripts that publish, in the variant for the router (`SPUBLISH` in a cluster).
    struct Scripts: Sendable {
        let enter: RedisScript
        let leave: RedisScript
        let refresh: RedisScript

        init(for redis: any RedisRouter) {
            self.enter = RedisPresence.enterScript.variant(for: redis)
            self.leave = RedisPresence.leaveScript.variant(for: redis)
            self.refresh = RedisPresence.refreshScript.variant(for: redis)
        }
    }
}
