import Foundation
import NIOCore
import NIOPosix
import Switchboard
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

/// What the listeners saw when the sentinel joined, and when they may leave.
private final class Board: Sendable {
    let seen = Locked<[Set<String>]>([])
    let done = Atomic<Bool>(false)
}

/// Joins and leaves `room` `pairs` times on one socket, waiting for each reply.
private func churn(port: Int, room: String, pairs: Int) async throws {
    try await RawClient.withConnection(port: port, deadline: .seconds(120)) { client in
        try await client.openRooms()
        for _ in 0..<pairs {
            try await client.sendJSON(["type": "join", "room": room])
            _ = try await client.readJSON()  // joined
            try await client.sendJSON(["type": "leave", "room": room])
            _ = try await client.readJSON()  // left
        }
    }
}

/// Joins `room` and rebuilds its member list from presence events, until `sentinel` joins (every event before it
/// has arrived then: a room's events are ordered); reports the members' ids by then to `seen`, and stays in the
/// room until `done`.
private func listen(port: Int, room: String, until sentinel: String, board: Board) async throws {
    try await RawClient.withConnection(port: port, deadline: .seconds(120)) { client in
        try await client.openRooms()
        let joined = try await client.join(room)
        let me = try #require((joined["you"] as? [String: Any])?["id"] as? String) as String
        var view = Set((joined["members"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? String })
        while true {
            let event = try await client.readJSON(presence: true)
            let member = event["member"] as? [String: Any]
            guard let id = member?["id"] as? String else { continue }
            if event["event"] as? String == "join" {
                view.insert(id)
                if member?["nick"] as? String == sentinel {
                    #expect(view.contains(me))
                    board.seen.withLock { $0.append(view) }
                    while !board.done.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(10)) }
                    return
                }
            } else {
                view.remove(id)
            }
        }
    }
}

/// Runs `pairs` join/leave pairs over 10 sockets spread over `ports` while a listener on each port watches, then
/// a sentinel joins; returns each listener's view and the server's member list at the end.
private func churnAndCompare(
    ports: [Int], pairs: Int, members: @escaping @Sendable () async throws -> [PresenceMember]
) async throws {
    let room = "busy"
    let board = Board()
    let listeners = Task {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for port in ports {
                group.addTask { try await listen(port: port, room: room, until: "sentinel", board: board) }
            }
            try await group.waitForAll()
        }
    }
    try await Task.sleep(for: .milliseconds(300))  // the listeners are in
    try await withThrowingTaskGroup(of: Void.self) { group in
        for n in 0..<10 {
            group.addTask { try await churn(port: ports[n % ports.count], room: room, pairs: pairs / 10) }
        }
        try await group.waitForAll()
    }
    try await RawClient.withConnection(port: ports[0]) { sentinel in
        try await sentinel.openRooms()
        try await sentinel.sendJSON(["type": "nick", "nick": "sentinel"])
        _ = try await sentinel.readJSON()
        _ = try await sentinel.join(room)
        // Everyone still in: the listeners (each has seen the sentinel by now, or soon) and the sentinel.
        #expect(await eventually(timeout: .seconds(30)) { board.seen.withLock { $0.count } == ports.count })
        let server = Set(try await members().map(\.id))
        board.done.store(true, ordering: .relaxed)
        #expect(server.count == ports.count + 1, "the listeners and the sentinel")
        for view in board.seen.withLock({ $0 }) {
            #expect(view == server, "a listener sees \(view.count) members, the server has \(server.count)")
        }
    }
    try await listeners.value
}

/// Join/leave pairs per run: 20,000 at full scale (`.ci/run`), 400 by default.
private let pairs = scaled(400, full: 20_000)

@Suite(
    "Presence is state: after many join/leave pairs every listener's list equals the server's", .timeLimit(.minutes(5)))
struct PresenceStateTests {
    @Test("Embedded")
    func embedded() async throws {
        let broker = LocalBroker()
        let presence = InMemoryPresence(broker: broker, eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        let app = ChatApplication.make(
            topics: Topics(broker: broker, logger: testLogger), configuration: .loadTest, presence: presence,
            logger: testLogger)
        try await withServer(app) { _, port in
            try await churnAndCompare(ports: [port, port], pairs: pairs) { try await presence.members(of: "busy") }
        }
    }

    @Test(
        "Two nodes on Redis",
        .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason))
    )
    func redis() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        try await withTwoNodes(on: redis) { nodeA, portA, _, portB in
            try await churnAndCompare(ports: [portA, portB], pairs: pairs) {
                try await nodeA.presence.members(of: "busy")
            }
        }
    }
}
