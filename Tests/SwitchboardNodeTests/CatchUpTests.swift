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
import Testing

@testable import SwitchboardApi
@testable import SwitchboardRooms

/// 12,000 bytes: the number, then characters of three bytes each up to the protocol's 4,000.
private func bigText(_ n: Int) -> String { "\(n) " + String(repeating: "\u{20AC}", count: 3_990) }

/// Posts to `room` through `log` and waits until stored.
private func post(_ log: any RoomLog, _ text: String, room: String = "full") async throws {
    let stored = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: Void.self)
    log.post(room: room, nick: "n", text: text, promise: stored)
    try await stored.futureResult.value()
}

/// Messages of 12 KB in the room: 1,000 (12 MB) at full scale, 150 (1.8 MB, still over the 1 MiB a socket may
/// have queued) by default.
private let roomSize = scaled(150, full: 1_000)

/// A room of `roomSize` messages of 12 KB; a client that saw only the first joins with `since` while 20 more
/// arrive live: it must get the rest and the 20, once, in order, in frames of bounded size, and stay open.
private func catchUpOfAFullRoom(port: Int, log: any RoomLog) async throws {
    let firstID = try await RawClient.withConnection(port: port) { watcher in
        try await watcher.openRooms()
        _ = try await watcher.join("full")
        try await post(log, bigText(0))
        return try #require(try await watcher.readJSON()["id"] as? String)
    }
    for n in 1..<roomSize { try await post(log, bigText(n)) }
    try await RawClient.withConnection(port: port, deadline: .seconds(50)) { client in
        try await client.openRooms()
        try await client.sendJSON(["type": "join", "room": "full", "since": firstID])
        // Live messages arrive while the catch-up goes out: with the history in one frame, the first of these
        // found over 1 MiB queued and the slow-consumer rule dropped the client.
        for n in roomSize..<(roomSize + 20) { log.post(room: "full", nick: "n", text: bigText(n), promise: nil) }
        var texts: [String] = []
        var seen = Set<String>()
        var frames = 0
        var largest = 0
        while texts.count < roomSize + 19 {
            let frame = try #require(try await client.readFrame(), "the socket closed after \(texts.count) messages")
            guard frame.opcode == 0x1 else {
                Issue.record("not a text frame: opcode \(frame.opcode), close code \(frame.closeCode ?? 0)")
                return
            }
            largest = max(largest, frame.payload.readableBytes)
            let object = try JSONSerialization.jsonObject(with: Data(frame.payload.readableBytesView))
            let json = try #require(object as? [String: Any])
            var batch: [[String: Any]] = []
            switch json["type"] as? String {
            case "joined", "history":
                frames += 1
                batch = json["messages"] as? [[String: Any]] ?? []
            case "message":
                batch = [json]
            default:
                break
            }
            for message in batch {
                guard let id = message["id"] as? String, seen.insert(id).inserted else { continue }
                texts.append(String((message["text"] as? String ?? "").prefix { $0 != " " }))
            }
        }
        #expect(texts == (1..<(roomSize + 20)).map(String.init), "all after the first, then the 20 live, each once")
        #expect(frames > roomSize / 25, "paged: \(frames) frames")
        #expect(largest < 512 * 1024, "frames stay far below the slow-consumer limit: largest \(largest) bytes")
    }
}

@Suite("Catch-up of a room of large messages (1,000 × 12 KB at full scale)", .timeLimit(.minutes(2)))
struct CatchUpTests {
    @Test("Embedded: 12 KB messages after `since`, with live messages meanwhile: complete, once, in order")
    func embedded() async throws {
        let broker = LocalBroker()
        // Room for the 1,000 and the 20 that arrive during the catch-up (1,000 would push the first one out).
        let log = InMemoryRoomLog(history: InMemoryRoomHistory(limits: .init(messagesPerRoom: 1_100)), broker: broker)
        let app = ChatApplication.make(
            topics: Topics(broker: broker, logger: testLogger), configuration: .loadTest, roomLog: log,
            logger: testLogger)
        try await withServer(app) { _, port in try await catchUpOfAFullRoom(port: port, log: log) }
    }

    @Test(
        "Redis: the same from a stream",
        .enabled(if: RedisServerProcess.isEnabled, Comment(rawValue: RedisServerProcess.skipReason))
    )
    func redis() async throws {
        let redis = try await RedisServerProcess()
        defer { redis.stop() }
        let node = try await RedisNode(redis)
        let log = RedisRoomLog(redis: node.client, limits: .init(messagesPerRoom: 1_100))
        try await withServer(node.app(roomLog: log)) { _, port in try await catchUpOfAFullRoom(port: port, log: log) }
        await node.stop()
    }
}
