import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Switchboard
import SwitchboardApi
import SwitchboardLocks
import SwitchboardNode
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardRooms
import SwitchboardRoomsRedis
import SwitchboardTesting
import SwitchboardTopics
import Synchronization
import Testing

/// Runs `body` (synchronous) while every thread of the Swift concurrency pool is busy, so that no task can start
/// until it returns: anything the server did with an unstructured task is held back, while its event loops go on.
private func withConcurrencyPoolHeld(_ body: () throws -> Void) async throws {
    // The pool's other threads are taken by tasks that wait for the gate; then this task runs `body` on the last.
    let others = max(ProcessInfo.processInfo.activeProcessorCount - 1, 0)
    let hold = Hold()
    for _ in 0..<others {
        Task.detached {
            hold.started.wrappingAdd(1, ordering: .relaxed)
            hold.gate.lock(whenValue: 1)
            hold.gate.unlock()
        }
    }
    defer {
        hold.gate.lock()
        hold.gate.unlock(withValue: 1)
    }
    // Waiting without blocking: the rest of the suite runs on this thread until the others are taken.
    let deadline = ContinuousClock.now + .seconds(10)
    while hold.started.load(ordering: .relaxed) < others, ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(1))
    }
    try #require(hold.started.load(ordering: .relaxed) == others, "the pool's threads could not all be taken")
    try body()
}

private final class Hold: Sendable {
    let started = Atomic<Int>(0)
    let gate = ConditionLock(value: 0)
}

/// A presence store that counts the leaves of members called "ghost", so a test knows the server handled a close.
private final class WatchedPresence: PresenceStore {
    let base: any PresenceStore
    let ghostsLeft = Atomic<Int>(0)

    init(_ base: any PresenceStore) {
        self.base = base
    }

    let calls = Locked<[String]>([])

    func enter(_ member: PresenceMember, room: String, promise: EventLoopPromise<Void>?) {
        self.calls.withLock { $0.append("enter \(member.id) \(member.nick)") }
        self.base.enter(member, room: room, promise: promise)
    }

    func leave(_ member: PresenceMember, room: String) {
        self.calls.withLock { $0.append("leave \(member.id) \(member.nick)") }
        self.base.leave(member, room: room)
        if member.nick == "ghost" { self.ghostsLeft.wrappingAdd(1, ordering: .relaxed) }
    }

    func members(of room: String) async throws -> [PresenceMember] {
        try await self.base.members(of: room)
    }
}

@Suite("Presence: a nickname change and a close together", .serialized, .timeLimit(.minutes(1)))
struct PresenceRaceTests {
    /// Joins `lobby`, then sends a nickname change and a close frame in one write and drops the connection at once,
    /// so the socket closes while the change is in flight; returns when the server has handled the close (the
    /// `round`th leave of a ghost), holding every task back until then.
    private func changeNickAndClose(port: Int, round: Int, presence: WatchedPresence) async throws {
        try await RawClient.withConnection(port: port) { client in
            try await client.openRooms()
            _ = try await client.join("lobby")
            var bytes = clientFrame(0x1, text: #"{"type":"nick","nick":"ghost"}"#)
            bytes.writeImmutableBuffer(clientFrame(0x8, closePayload(1000)))
            try await withConcurrencyPoolHeld {
                try client.channel.writeAndFlush(bytes).wait()
                try client.channel.close().wait()
                // The server's event loops handle the nickname and the close meanwhile; no task can run.
                let deadline = Date().addingTimeInterval(2)
                while presence.ghostsLeft.load(ordering: .relaxed) < round, Date() < deadline { usleep(200) }
            }
            #expect(presence.ghostsLeft.load(ordering: .relaxed) == round, "the server handled the close within 2 s")
        }
    }

    private func expectEmptyLobby(port: Int) async throws {
        try await RawClient.withConnection(port: port) { observer in
            try await observer.openRooms()
            let joined = try await observer.join("lobby")
            let members = (joined["members"] as? [[String: Any]] ?? []).compactMap { $0["nick"] as? String }
            #expect(members == ["guest"], "only the observer itself: no ghost")
        }
    }

    @Test("Embedded: the member list ends empty")
    func embedded() async throws {
        let broker = LocalBroker()
        let presence = WatchedPresence(
            InMemoryPresence(broker: broker, eventLoop: MultiThreadedEventLoopGroup.singleton.next()))
        let app = ChatApplication.make(
            topics: Topics(broker: broker, logger: testLogger), configuration: .loadTest, presence: presence,
            logger: testLogger)
        try await withServer(app) { _, port in
            for round in 1...3 { try await self.changeNickAndClose(port: port, round: round, presence: presence) }
            try await self.expectEmptyLobby(port: port)
        }
    }

    @Test(
        "With Redis: the member list ends empty, in Redis too",
        .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason))
    )
    func redis() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let node = try await RedisNode(redis)
        let presence = WatchedPresence(node.presence)
        let app = ChatApplication.make(
            topics: node.topics, configuration: .loadTest, roomLog: RedisRoomLog(redis: node.client),
            presence: presence, logger: testLogger)
        try await withServer(app) { _, port in
            for round in 1...3 { try await self.changeNickAndClose(port: port, round: round, presence: presence) }
            try await self.expectEmptyLobby(port: port)
        }
        // The observer's own leave follows its close; a ghost would never leave.
        let empty = await eventually { (try? await node.presence.members(of: "lobby").isEmpty) == true }
        #expect(empty)
        if !empty {
            let set = try await node.client.send(
                RESPCommand("ZRANGE", RoomKeys.presence("lobby"), "0", "-1", "WITHSCORES"))
            print("DIAG set: \(set)")
            print("DIAG calls: \(presence.calls.withLock { $0 })")
        }
        await node.stop()
    }
}
