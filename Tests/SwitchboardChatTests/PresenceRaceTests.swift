import Foundation
import NIOConcurrencyHelpers
import NIOCore
import Switchboard
import SwitchboardChatRedis
import SwitchboardTesting
import Synchronization
import Testing

/// Runs `body` (synchronous) while every thread of the Swift concurrency pool is busy, so that no task can start
/// until it returns: anything the server did with an unstructured task is held back, while its event loops go on.
private func withConcurrencyPoolHeld(_ body: () throws -> Void) throws {
    // This thread is one of the pool's; the others are taken by tasks that wait for the gate.
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
    let deadline = Date().addingTimeInterval(5)
    while hold.started.load(ordering: .relaxed) < others, Date() < deadline { usleep(1000) }
    try #require(hold.started.load(ordering: .relaxed) == others, "the pool's threads could not all be taken")
    try body()
}

private final class Hold: Sendable {
    let started = Atomic<Int>(0)
    let gate = ConditionLock(value: 0)
}

@Suite("Presence: a nickname change and a close together", .serialized, .timeLimit(.minutes(1)))
struct PresenceRaceTests {
    /// Joins `lobby`, then sends a nickname change and a close frame in one write and drops the connection at once,
    /// so the socket closes while the change is in flight; returns when the server has seen the close.
    private func changeNickAndClose(port: Int) async throws {
        try await RawClient.withConnection(port: port) { client in
            try await client.openRooms()
            _ = try await client.join("lobby")
            var bytes = clientFrame(0x1, text: #"{"type":"nick","nick":"ghost"}"#)
            bytes.writeImmutableBuffer(clientFrame(0x8, closePayload(1000)))
            try withConcurrencyPoolHeld {
                try client.channel.writeAndFlush(bytes).wait()
                try client.channel.close().wait()
                // The server's event loops handle the nickname and the close meanwhile; no task can run.
                usleep(300_000)
            }
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
        try await withServer(roomsApp()) { _, port in
            for _ in 0..<3 { try await self.changeNickAndClose(port: port) }
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
        try await withServer(node.app()) { _, port in
            for _ in 0..<3 { try await self.changeNickAndClose(port: port) }
            try await self.expectEmptyLobby(port: port)
        }
        #expect(try await node.presence.members(of: "lobby").isEmpty)
        await node.stop()
    }
}
