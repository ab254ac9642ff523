import Foundation
import NIOCore
import NIOPosix
import SwitchboardLocks
import SwitchboardNode
import SwitchboardPubSub
import SwitchboardRedis
import SwitchboardRoomsRedis
import SwitchboardTesting
import SwitchboardTopics
import Synchronization
import Testing

@testable import SwitchboardApi
@testable import SwitchboardRooms

/// Junk rooms one socket touches: 10,000 at the default room limit in the full-scale run; by default 600 against a
/// limit of 100, so they evict each other many times over.
private let junkRooms = scaled(600, full: 10_000)
private let roomLimit = fullScale ? ChatConfiguration().maxRooms : 100

private func texts(_ joined: [String: Any]) -> [String] {
    (joined["messages"] as? [[String: Any]] ?? []).compactMap { $0["text"] as? String }
}

extension RawClient {
    /// Joins, says something in and leaves each room of `rooms`, 50 at a time; fails on any error frame.
    fileprivate func touch(_ rooms: Range<Int>) async throws {
        for start in stride(from: rooms.lowerBound, to: rooms.upperBound, by: 50) {
            let batch = start..<min(start + 50, rooms.upperBound)
            for n in batch {
                try await self.sendJSON(["type": "join", "room": "junk-\(n)"])
                try await self.sendJSON(["type": "say", "room": "junk-\(n)", "text": "junk \(n)"])
                try await self.sendJSON(["type": "leave", "room": "junk-\(n)"])
            }
            var left = 0
            while left < batch.count {
                let frame = try await self.readJSON()
                switch frame["type"] as? String {
                case "left": left += 1
                case "error":
                    Issue.record("touching junk rooms: \(frame)")
                    return
                default: continue
                }
            }
        }
    }
}

/// One socket touches `junkRooms` rooms while another sits in the lobby: the lobby's history stays whole (rooms with
/// members are never evicted), the first junk rooms' history went, the last ones' stayed.
private func junkLeavesTheLobby(port: Int) async throws {
    try await RawClient.withConnection(port: port, deadline: .seconds(100)) { resident in
        try await resident.openRooms()
        _ = try await resident.join("lobby")
        for n in 0..<5 { try await resident.sendJSON(["type": "say", "room": "lobby", "text": "lobby \(n)"]) }
        for _ in 0..<5 { _ = try await resident.readJSON() }
        try await RawClient.withConnection(port: port, deadline: .seconds(100)) { attacker in
            try await attacker.openRooms()
            try await attacker.touch(0..<junkRooms)
        }
        try await RawClient.withConnection(port: port) { newcomer in
            try await newcomer.openRooms()
            #expect(texts(try await newcomer.join("lobby")) == (0..<5).map { "lobby \($0)" })
            #expect(texts(try await newcomer.join("junk-\(junkRooms - 1)")) == ["junk \(junkRooms - 1)"])
        }
    }
}

@Suite("History limits over real sockets", .timeLimit(.minutes(3)))
struct HistoryLimitsTests {
    @Test("Embedded: junk rooms evict only each other, never a room with members")
    func embeddedJunkRooms() async throws {
        let configuration = ChatConfiguration(
            maxRooms: roomLimit, history: RoomHistoryLimits(maxRooms: roomLimit), rateLimits: .unlimited)
        let counters = ChatCounters()
        let app = ChatApplication.make(
            topics: Topics(broker: LocalBroker(), logger: testLogger), configuration: configuration,
            counters: counters, logger: testLogger)
        try await withServer(app) { _, port in
            try await junkLeavesTheLobby(port: port)
            try await RawClient.withConnection(port: port) { newcomer in
                try await newcomer.openRooms()
                #expect(texts(try await newcomer.join("junk-0")).isEmpty, "the junk room empty longest went first")
            }
            // Rooms with history: the lobby and `roomLimit - 1` junk rooms; every other one went, counted.
            #expect(counters.snapshot.historyEvictions == junkRooms - (roomLimit - 1))
        }
    }

    @Test("Embedded, fair: 40 sockets flooding rooms of their own with 12 KB messages erase no one else's history")
    func fairHistory() async throws {
        // The audit's scenario scaled down (170 sockets × 10 × 12 KB against 16 MiB): 4.8 MB against 2 MiB.
        let configuration = ChatConfiguration(history: RoomHistoryLimits(maxBytes: 2 * 1024 * 1024))
        let app = ChatApplication.make(
            topics: Topics(broker: LocalBroker(), logger: testLogger), configuration: configuration,
            logger: testLogger)
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port, deadline: .seconds(60)) { resident in
                try await resident.openRooms()
                _ = try await resident.join("busy")
                _ = try await resident.join("quiet")
                for room in ["busy", "quiet"] {
                    // 15 each: within the socket's burst of 40 messages.
                    for n in 0..<15 {
                        try await resident.sendJSON(["type": "say", "room": room, "text": "\(room) \(n)"])
                    }
                    for _ in 0..<15 { #expect(try await resident.readJSON()["type"] as? String == "message") }
                }
                try await resident.sendJSON(["type": "leave", "room": "quiet"])
                #expect(try await resident.readJSON()["type"] as? String == "left")
                let big = String(repeating: "€", count: 4_000)  // 12 KB in the 4,000 characters a message may have
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for n in 0..<40 {
                        group.addTask {
                            try await RawClient.withConnection(port: port, deadline: .seconds(60)) { attacker in
                                try await attacker.openRooms()
                                _ = try await attacker.join("flood-\(n)")
                                for _ in 0..<10 {
                                    try await attacker.sendJSON(["type": "say", "room": "flood-\(n)", "text": big])
                                }
                                for _ in 0..<10 {
                                    #expect(try await attacker.readJSON()["type"] as? String == "message")
                                }
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                try await RawClient.withConnection(port: port) { newcomer in
                    try await newcomer.openRooms()
                    let quiet = texts(try await newcomer.join("quiet"))
                    #expect(quiet == (0..<15).map { "quiet \($0)" }, "\(quiet.count): \(quiet.prefix(3))")
                    #expect(texts(try await newcomer.join("busy")) == (0..<15).map { "busy \($0)" })
                }
            }
        }
    }

    @Test("Embedded: past the node's room limit a join gets rooms_full; a room freed lets the next one in")
    func roomsFull() async throws {
        let configuration = ChatConfiguration(maxRooms: 3, rateLimits: .unlimited)
        let counters = ChatCounters()
        let app = ChatApplication.make(
            topics: Topics(broker: LocalBroker(), logger: testLogger), configuration: configuration,
            counters: counters, logger: testLogger)
        try await withServer(app) { _, port in
            try await RawClient.withConnection(port: port) { client in
                try await client.openRooms()
                for room in ["a", "b", "c"] { _ = try await client.join(room) }
                try await client.sendJSON(["type": "join", "room": "d", "ref": "r1"])
                let refused = try await client.readJSON()
                #expect(refused["type"] as? String == "error" && refused["code"] as? String == "rooms_full")
                #expect(refused["ref"] as? String == "r1")
                try await client.sendJSON(["type": "leave", "room": "a"])
                #expect(try await client.readJSON()["type"] as? String == "left")
                #expect(try await client.join("d")["type"] as? String == "joined")
            }
            #expect(counters.snapshot.roomsFullRefusals == 1, "counted")
        }
    }
}

@Suite(
    "History limits with Redis",
    .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason)),
    .timeLimit(.minutes(3))
)
struct RedisHistoryLimitsTests {
    @Test("Junk rooms leave the lobby whole, and their streams expire after the history's age limit")
    func junkRoomsExpire() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let node = try await RedisNode(redis)
        let ttl: Int64 = 3_600_000
        let configuration = ChatConfiguration(
            history: RoomHistoryLimits(maxAgeMilliseconds: ttl), rateLimits: .unlimited)
        try await withServer(node.app(configuration: configuration)) { _, port in
            try await junkLeavesTheLobby(port: port)
        }
        for room in ["junk-0", "junk-\(junkRooms - 1)", "lobby"] {
            let remaining = try await node.client.send(RESPCommand("PTTL", RoomKeys.stream(room)))
            guard case .integer(let milliseconds) = remaining else {
                Issue.record("\(room): PTTL answered \(remaining)")
                continue
            }
            #expect(milliseconds > 0 && milliseconds <= ttl, "\(room): PTTL \(milliseconds)")
        }
        await node.stop()
    }

    @Test("Messages past the age limit are not sent; `since` one of them is a gap")
    func ageLimit() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let node = try await RedisNode(redis)
        let now = Atomic<Int64>(Int64(Date().timeIntervalSince1970 * 1000))
        let log = RedisRoomLog(
            redis: node.client, limits: RoomHistoryLimits(maxAgeMilliseconds: 60_000),
            clock: { now.load(ordering: .relaxed) })
        let stored = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
        log.post(room: "r", nick: "n", text: "old", promise: stored)
        try await stored.futureResult.value()
        let old = try #require(try await log.history(of: "r", since: nil, limit: 10).messages.first)
        // This node's clock moves on two minutes: the message (timed by Redis) is now past the limit.
        now.wrappingAdd(120_000, ordering: .relaxed)
        #expect(try await log.history(of: "r", since: nil, limit: 10).messages.isEmpty)
        #expect(try await log.history(of: "r", since: old.id, limit: 10).gap)
        await node.stop()
    }
}
