import FoundationEssentials
import NIOCore
import SwitchboardLocks
import SwitchboardWebSocket

/// Catching a joining (or re-syncing) socket up: the history in bounded frames, each sent once the previous one was
/// written, then the live messages held meanwhile.
///
/// A catch-up of a full room (1,000 messages of 12 KB) is 12 MB: sent in one frame, it would sit in the socket's
/// outbound queue and trip the slow-consumer limit (1 MiB), dropping the very client it was meant to catch up.
/// Paced by the socket's writes, the queue holds one frame at most, however slowly the client reads, and the
/// history is read from the log a page at a time, so neither side holds all of it in memory.
extension RoomSession {
    /// The most bytes (estimated) of messages in one frame: well under the slow-consumer limit.
    static let maxHistoryFrameBytes = 256 * 1024
    /// Messages read from the log at a time.
    static let historyPageSize = 200

    /// Sends `room`'s history since `since` (or the recent one) to `member`'s socket: a `joined` frame, then
    /// `history` frames while `more` is true; then hands the member over to live messages. Runs in the task of a
    /// join or a re-sync; returns early if the socket closed or left the room.
    ///
    /// - Throws: What reading the log or the presence throws.
    static func catchUp(
        _ session: NIOLoopBound<RoomSession>,
        _ member: NIOLoopBound<RoomMember>,
        attempt: Int,
        room: String,
        since: String?,
        ref: String?
    ) async throws {
        let (endpoint, socket) = try await session.eventLoop.submit {
            (session.value.endpoint, session.value.socket)
        }.value()
        var page = try await endpoint.log.history(of: room, since: since, limit: Self.historyPageSize)
        let members = try await endpoint.presence.members(of: room)
        let gap = page.gap
        var newest: String? = gap ? nil : since
        var first = true
        var lostMeanwhile = false
        let encoder = JSONEncoder()
        while true {
            let chunks = Self.chunked(page.messages)
            for (index, chunk) in chunks.enumerated() {
                let more = index < chunks.count - 1 || page.more
                // Still in the room? The socket may have closed or left it while the last frame went out.
                guard
                    let you = try await session.eventLoop.submit({
                        session.value.current(member.value, attempt: attempt)
                    }).value()
                else { return }
                let data =
                    first
                    ? try encoder.encode(
                        JoinedFrame(
                            room: room, messages: chunk, gap: gap, members: members, users: PresenceUser.of(members),
                            you: you, more: more, ref: ref))
                    : try encoder.encode(HistoryFrame(room: room, messages: chunk, more: more))
                first = false
                do {
                    try await socket.sendAndWait(WebSocketMessage(kind: .text, data: ByteBuffer(bytes: data)))
                } catch {
                    return  // closed (or dropped as a slow reader): closing cleans the session up
                }
            }
            newest = page.messages.last?.id ?? newest
            guard page.more, let last = page.messages.last?.id else { break }
            page = try await endpoint.log.history(of: room, since: last, limit: Self.historyPageSize)
            if page.gap {
                // The log was trimmed past what we sent while we read it: the client must re-sync (with a gap).
                lostMeanwhile = true
                break
            }
        }
        let caughtUpTo = newest
        let lost = lostMeanwhile
        session.eventLoop.execute {
            session.value.caughtUp(member.value, attempt: attempt, newest: caughtUpTo, lostMeanwhile: lost)
        }
    }

    /// `messages` in frames of at most ``maxHistoryFrameBytes`` (estimated); at least one, maybe empty, so that a
    /// `joined` frame always goes out.
    static func chunked(_ messages: [RoomMessage]) -> [[RoomMessage]] {
        var chunks: [[RoomMessage]] = [[]]
        var bytes = 0
        for message in messages {
            // JSON of a message: its strings and about 100 bytes of keys, id and timestamp.
            let size = message.text.utf8.count + message.nick.utf8.count + message.room.utf8.count + 128
            if bytes + size > Self.maxHistoryFrameBytes, !chunks[chunks.count - 1].isEmpty {
                chunks.append([])
                bytes = 0
            }
            chunks[chunks.count - 1].append(message)
            bytes += size
        }
        return chunks
    }

    /// This socket's presence entry if `member` is still its member of its room and `attempt` its current join or
    /// re-sync (which is answered from now on); on the loop.
    func current(_ member: RoomMember, attempt: Int) -> PresenceMember? {
        guard !self.isClosed, self.rooms[member.room] === member, member.attempt == attempt else { return nil }
        member.isAnswered = true
        return self.presenceMember
    }

    /// The history went out up to `newest`: hand over to live messages. On the loop.
    func caughtUp(_ member: RoomMember, attempt: Int, newest: String?, lostMeanwhile: Bool) {
        guard !self.isClosed, self.rooms[member.room] === member, member.attempt == attempt else { return }
        guard !lostMeanwhile else { return self.lostMessages(member) }
        // Live messages up to `newest` (held, or still in flight) are skipped; newer ones follow.
        switch member.historySent(newest: newest) {
        case .delivered:
            break
        case .overflowed:
            // More arrived while joining than we hold for one socket: let the client catch up from its last id.
            self.endpoint.sockets.counters.count(.joinOverflow)
            self.socket.close(code: .tryAgainLater, reason: "too many messages while joining; rejoin with since")
        case .gapped:
            self.lostMessages(member)
        }
    }
}
