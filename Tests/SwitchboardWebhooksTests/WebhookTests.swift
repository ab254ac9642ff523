import Crypto
import Foundation
import HTTPTypes
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Switchboard
import SwitchboardApi
import SwitchboardAuth
import SwitchboardHTTPClient
import SwitchboardLocks
import SwitchboardNode
import SwitchboardPubSub
import SwitchboardRooms
import SwitchboardTesting
import SwitchboardTopics
import Testing

@testable import SwitchboardWebhooks

private let secret = "the-webhook-tests-hmac-secret"
private let tokenSecret = "the-webhook-tests-token-secret-of-32-bytes"

/// A real HTTP receiver (our own server, on a port of its own) that records every POST and answers with what
/// `answer` says for the request's number (0 for the first).
final class Receiver: Sendable {
    struct Hit: Sendable {
        var batch: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(self.body.utf8))) as? [String: Any] ?? [:]
        }
        var body: String
        var signature: String
        var at: ContinuousClock.Instant
        var events: [[String: Any]] { self.batch["events"] as? [[String: Any]] ?? [] }
    }

    enum Answer: Sendable {
        case status(Int)
        case hang
    }

    private let hits = Locked<[Hit]>([])
    private let count = Locked(0)
    let answer: @Sendable (Int) -> Answer

    init(answer: @escaping @Sendable (Int) -> Answer = { _ in .status(204) }) {
        self.answer = answer
    }

    var recorded: [Hit] { self.hits.withLock { $0 } }

    /// Every event received with a 2xx answer... and the failed ones too (tests look at `events(delivered:)`).
    func events() -> [[String: Any]] { self.recorded.flatMap(\.events) }

    var app: some Application {
        var router = Router()
        router.post("/hook") { request in
            let body = try await request.body.collect(upTo: 1 << 20)
            let number = self.count.withLock { value in
                defer { value += 1 }
                return value
            }
            let hit = Hit(
                body: String(buffer: body), signature: request.headers[HTTPField.Name("Switchboard-Signature")!] ?? "",
                at: .now)
            switch self.answer(number) {
            case .status(let status):
                if (200..<300).contains(status) { self.hits.withLock { $0.append(hit) } }
                return Response(status: .init(code: status))
            case .hang:
                try await Task.sleep(for: .seconds(30))
                return Response(status: .noContent)
            }
        }
        return router
    }
}

/// The chat with webhooks to `port`, on the embedded broker; `body` gets the chat's port and the dispatcher.
private func withChat(
    hookPort: Int, configure: (inout WebhookConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (Int, WebhookDispatcher) async throws -> Void
) async throws {
    var configuration = WebhookConfiguration(
        urls: [OutboundURL("http://127.0.0.1:\(hookPort)/hook")!], secret: secret, leaveDelay: .milliseconds(400),
        timeout: .seconds(10), firstRetryDelay: .milliseconds(50), maxRetryDelay: .milliseconds(200))
    configure(&configuration)
    let group = MultiThreadedEventLoopGroup.singleton
    let dispatcher = WebhookDispatcher(
        configuration: configuration, client: HTTPClient(group: group, logger: testLogger), logger: testLogger)
    let events = WebhookEvents(dispatcher: dispatcher)
    let auth = ChatAuthentication(
        verifier: try await TokenVerifier(keys: [try .hmac(secret: tokenSecret)]), allowsAnonymous: true)
    var chat = ChatConfiguration()
    chat.auth = auth
    chat.rateLimits = .unlimited
    let app = ChatApplication.make(
        topics: Topics(broker: LocalBroker(), logger: testLogger), configuration: chat, presenceObserver: events,
        leaveDelay: configuration.leaveDelay, observer: events, eventLoop: group.next(), logger: testLogger)
    let running = Task { try await dispatcher.run() }
    defer { running.cancel() }
    try await withServer(app, services: app.services) { _, port in try await body(port, dispatcher) }
}

private func token(_ user: String, name: String) async throws -> String {
    try await TokenIssuer.sign(.init(userID: user, name: name), with: .hmac(secret: tokenSecret))
}

extension RawClient {
    /// Opens `/ws`, authenticates (with a token) and joins `room`.
    func member(token: String?, room: String) async throws {
        let response = try await self.handshake(path: "/ws", headers: ["Sec-WebSocket-Protocol: switchboard.chat.v1"])
        #expect(response.status == 101)
        _ = try await self.next(type: "welcome")
        if let token {
            try await self.send(clientFrame(0x1, Array(#"{"type":"auth","token":"\#(token)"}"#.utf8)))
            _ = try await self.next(type: "authenticated")
        }
        try await self.send(clientFrame(0x1, Array(#"{"type":"join","room":"\#(room)"}"#.utf8)))
        _ = try await self.next(type: "joined")
    }

    /// The next frame of `type`, skipping others.
    func next(type: String) async throws -> [String: Any] {
        while true {
            let frame = try #require(try await self.readFrame(), "the socket closed")
            guard frame.opcode == 0x1 else { continue }
            let json = try JSONSerialization.jsonObject(with: Data(frame.payload.readableBytesView)) as? [String: Any]
            if json?["type"] as? String == type { return json ?? [:] }
        }
    }
}

/// The names of `events`, with the room for room and member events (`member_joined lobby 42`).
func describe(_ events: [[String: Any]]) -> [String] {
    events.map { event in
        [event["name"] as? String, event["room"] as? String, event["user"] as? String].compactMap { $0 }
            .joined(separator: " ")
    }
}

@Suite(
    "Webhooks: a real receiver gets each event once, signed, in order, with the leave delay", .timeLimit(.minutes(1)))
struct WebhookTests {
    @Test("A scripted scenario: each event once, in order; a reload makes no leave and no join; leaves after the delay")
    func scenario() async throws {
        let receiver = Receiver()
        try await withServer(receiver.app) { _, hookPort in
            // 1.5 s: the leaves must wait while the test checks the closes in between, on a loaded machine too.
            try await withChat(hookPort: hookPort, configure: { $0.leaveDelay = .milliseconds(1500) }) {
                port, dispatcher in
                try await RawClient.withConnection(port: port) { alice in
                    try await alice.member(token: try await token("42", name: "Alice"), room: "lobby")
                    // Alice reloads: her second socket joins before the first closes, as a browser does.
                    try await RawClient.withConnection(port: port) { again in
                        try await again.member(token: try await token("42", name: "Alice"), room: "lobby")
                    }
                    // Its close is handled on its socket's loop, which may come after the guest's connect on another.
                    #expect(await eventually { describe(receiver.events()).contains("disconnect 42") })
                    try await RawClient.withConnection(port: port) { guest in
                        try await guest.member(token: nil, room: "lobby")
                    }
                    // The guest's close is handled on its socket's loop: Alice closes only once it has been, so the
                    // order below is the order of the closes (two loops could otherwise take them either way).
                    #expect(await eventually { describe(receiver.events()).contains("disconnect") })
                }
                let left = ContinuousClock.now
                #expect(await eventually(timeout: .seconds(8)) { describe(receiver.events()).count >= 12 })
                try await Task.sleep(for: .milliseconds(600))  // nothing more comes
                #expect(
                    describe(receiver.events()) == [
                        "connect 42", "room_occupied lobby", "member_joined lobby 42",
                        "connect 42",  // the reload's socket: Alice is in the room already, no second join
                        "disconnect 42",
                        "connect", "member_joined lobby",  // an anonymous guest: a member per socket
                        "disconnect", "disconnect 42",
                        // After the delay, in the order of the leaves: the guest, Alice, then the room.
                        "member_left lobby", "member_left lobby 42", "room_vacated lobby",
                    ])
                let last = try #require(receiver.recorded.last)
                // `left` is taken after the sockets' closes returned here; the server may have seen them a moment before.
                #expect(last.at - left >= .milliseconds(1000), "the leaves wait for the 1.5 s delay")
                #expect(dispatcher.counts.delivered == 12 && dispatcher.counts.failedAttempts == 0)
                // Every batch is signed: t=<seconds>,v1=HMAC-SHA256(secret, "<t>.<body>").
                for hit in receiver.recorded {
                    let parts = Dictionary(
                        uniqueKeysWithValues: hit.signature.split(separator: ",").map {
                            let pair = $0.split(separator: "=", maxSplits: 1)
                            return (String(pair[0]), String(pair.count > 1 ? pair[1] : ""))
                        })
                    let signed = Data("\(parts["t"] ?? "").\(hit.body)".utf8)
                    let mac = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data(secret.utf8)))
                    #expect(parts["v1"] == mac.map { String(format: "%02x", $0) }.joined(), "\(hit.signature)")
                }
            }
        }
    }

    @Test("message events: none by default; asked for, each stored message once, in order, with its sender")
    func messages() async throws {
        for asked in [false, true] {
            let receiver = Receiver()
            try await withServer(receiver.app) { _, hookPort in
                try await withChat(
                    hookPort: hookPort,
                    configure: { if asked { $0.events.insert(.message) } }
                ) { port, _ in
                    try await RawClient.withConnection(port: port) { alice in
                        try await alice.member(token: try await token("42", name: "Alice"), room: "lobby")
                        for text in ["one", "two \"quoted\"", "three"] {
                            let frame = ["type": "say", "room": "lobby", "text": text]
                            let json = try JSONSerialization.data(withJSONObject: frame)
                            try await alice.send(clientFrame(0x1, Array(json)))
                            _ = try await alice.next(type: "message")
                        }
                    }
                    #expect(await eventually { describe(receiver.events()).contains("room_vacated lobby") })
                }
            }
            let said = receiver.events().filter { $0["name"] as? String == "message" }
            if asked {
                #expect(said.compactMap { $0["text"] as? String } == ["one", "two \"quoted\"", "three"])
                #expect(said.allSatisfy { $0["room"] as? String == "lobby" && $0["user"] as? String == "42" })
                #expect(said.allSatisfy { $0["nick"] as? String == "Alice" && $0["socket"] is String })
            } else {
                #expect(said.isEmpty, "message is not among the default events")
                #expect(receiver.events().count == 6, "\(describe(receiver.events()))")
            }
        }
    }

    @Test("A page reload (close, then a new socket within the delay) makes neither a leave nor a join")
    func reload() async throws {
        let receiver = Receiver()
        try await withServer(receiver.app) { _, hookPort in
            // A delay long enough for the second socket to come back within it on a loaded machine.
            try await withChat(hookPort: hookPort, configure: { $0.leaveDelay = .milliseconds(3000) }) { port, _ in
                try await RawClient.withConnection(port: port) { first in
                    try await first.member(token: try await token("7", name: "Bob"), room: "lobby")
                }
                try await RawClient.withConnection(port: port) { second in
                    try await second.member(token: try await token("7", name: "Bob"), room: "lobby")
                    try await Task.sleep(for: .milliseconds(3500))  // past the delay
                    // The first socket's close and the second's connect are taken on two loops, in either order;
                    // what matters is that nothing else comes: no leave, no second join.
                    #expect(
                        describe(receiver.events()).sorted() == [
                            "connect 7", "connect 7", "disconnect 7", "member_joined lobby 7", "room_occupied lobby",
                        ])
                    #expect(
                        Array(describe(receiver.events()).prefix(3)) == [
                            "connect 7", "room_occupied lobby", "member_joined lobby 7",
                        ])
                }
            }
        }
    }

    @Test("A receiver that fails 3 times gets the events on the 4th try, and nothing twice")
    func retries() async throws {
        let receiver = Receiver { number in number < 3 ? .status(503) : .status(200) }
        try await withServer(receiver.app) { _, hookPort in
            try await withChat(hookPort: hookPort) { port, dispatcher in
                try await RawClient.withConnection(port: port) { alice in
                    try await alice.member(token: try await token("42", name: "Alice"), room: "lobby")
                    #expect(await eventually(timeout: .seconds(5)) { dispatcher.counts.delivered >= 3 })
                }
                #expect(dispatcher.counts.failedAttempts == 3)
                let names = describe(receiver.events())
                #expect(Array(names.prefix(3)) == ["connect 42", "room_occupied lobby", "member_joined lobby 42"])
                #expect(Set(names).count == names.count, "nothing twice: \(names)")
            }
        }
    }

    @Test("A receiver that hangs does not slow the chat; its queue is bounded and the overflow counted")
    func hangingReceiver() async throws {
        let receiver = Receiver { _ in .hang }
        try await withServer(receiver.app) { _, hookPort in
            let bounded = { (configuration: inout WebhookConfiguration) in
                configuration.maxQueued = 20
                configuration.timeout = .milliseconds(500)
            }
            try await withChat(hookPort: hookPort, configure: bounded) { port, dispatcher in
                try await RawClient.withConnection(port: port) { alice in
                    try await alice.member(token: try await token("42", name: "Alice"), room: "lobby")
                    var trips: [Duration] = []
                    for index in 0..<200 {
                        let sent = ContinuousClock.now
                        try await alice.send(
                            clientFrame(0x1, Array(#"{"type":"say","room":"lobby","text":"m\#(index)"}"#.utf8)))
                        _ = try await alice.next(type: "message")
                        trips.append(ContinuousClock.now - sent)
                    }
                    trips.sort()
                    let (median, slowest) = (trips[trips.count / 2], trips[trips.count - 1])
                    // Sockets opening and closing meanwhile fill the receiver's queue past its bound.
                    for _ in 0..<30 {
                        try await RawClient.withConnection(port: port) { guest in
                            try await guest.member(token: nil, room: "lobby")
                        }
                    }
                    print("webhook receiver hanging: 200 chat round trips, median \(median), slowest \(slowest)")
                    // A chat that waited on the receiver would take its POST timeout (500 ms) every time, or more;
                    // the median is far below that even on a loaded machine, where one trip may stall.
                    #expect(median < .milliseconds(250), "chat round trips waited on the receiver: \(median)")
                    #expect(dispatcher.counts.delivered == 0)
                    #expect(await eventually { dispatcher.counts.overflowed > 0 })
                }
            }
        }
    }

    @Test("The queue is bounded in bytes too (12 KB message events); drops are logged once per interval, counted")
    func queueBytes() throws {
        let logs = RecordedLogs()
        var configuration = WebhookConfiguration(
            urls: [try #require(OutboundURL("http://127.0.0.1:9/hook"))], secret: secret, events: [.message],
            maxQueuedBytes: 100_000)
        configuration.overflowLogInterval = .seconds(60)
        // Not run: nothing is sent, the queue only fills.
        let dispatcher = WebhookDispatcher(
            configuration: configuration,
            client: HTTPClient(group: MultiThreadedEventLoopGroup.singleton, logger: testLogger),
            logger: logs.logger())
        let text = String(repeating: "m", count: 12_000)
        for _ in 0..<1_000 {
            dispatcher.send(WebhookEvent(name: .message, room: "lobby", nick: "a", text: text))
        }
        // 100,000 bytes hold 8 events of ~12,160 bytes; the other 992 are dropped (not 1,000 × 12 KB kept).
        #expect(dispatcher.counts.overflowed == 992)
        let lines = logs.lines(containing: "Webhook queue full")
        #expect(lines.count == 1, "one line for the interval, not one per event")
        #expect(lines.first?.metadata["dropped"] == "1")
    }

    @Test("Graceful shutdown: the leaves still waiting go out at once, and the dispatcher drains them before it stops")
    func shutdownSendsWaitingLeaves() async throws {
        let receiver = Receiver()
        try await withServer(receiver.app) { _, hookPort in
            let group = MultiThreadedEventLoopGroup.singleton
            let dispatcher = WebhookDispatcher(
                configuration: WebhookConfiguration(
                    urls: [OutboundURL("http://127.0.0.1:\(hookPort)/hook")!], secret: secret,
                    leaveDelay: .seconds(30)),
                client: HTTPClient(group: group, logger: testLogger), logger: testLogger)
            let events = WebhookEvents(dispatcher: dispatcher)
            var chat = ChatConfiguration()
            chat.auth = ChatAuthentication(
                verifier: try await TokenVerifier(keys: [try .hmac(secret: tokenSecret)]), allowsAnonymous: true)
            let app = ChatApplication.make(
                topics: Topics(broker: LocalBroker(), logger: testLogger), configuration: chat,
                presenceObserver: events, leaveDelay: .seconds(30), observer: events, eventLoop: group.next(),
                logger: testLogger)
            // As the node orders them: presence (which reports the waiting leaves) stops before the dispatcher.
            let services = ServiceGroup(
                configuration: .init(services: [dispatcher] + app.services, logger: testLogger))
            let running = Task { try await services.run() }
            try await withServer(app) { _, port in
                try await RawClient.withConnection(port: port) { alice in
                    try await alice.member(token: try await token("42", name: "Alice"), room: "lobby")
                }
                #expect(await eventually { describe(receiver.events()).contains("disconnect 42") })
            }
            let stopping = ContinuousClock.now
            await services.triggerGracefulShutdown()
            try await running.value
            // Her leave was to wait 30 s: at shutdown nobody is left to come back, so it went out, and was
            // delivered before the dispatcher stopped.
            #expect(ContinuousClock.now - stopping < .seconds(5))
            #expect(
                describe(receiver.events()) == [
                    "connect 42", "room_occupied lobby", "member_joined lobby 42", "disconnect 42",
                    "member_left lobby 42", "room_vacated lobby",
                ])
            #expect(dispatcher.counts.delivered == 6 && dispatcher.counts.abandoned == 0)
        }
    }

    @Test("Graceful shutdown with a receiver that hangs: the drain ends at its deadline and counts what it dropped")
    func shutdownDrainDeadline() async throws {
        let receiver = Receiver { _ in .hang }
        try await withServer(receiver.app) { _, hookPort in
            let dispatcher = WebhookDispatcher(
                configuration: WebhookConfiguration(
                    urls: [OutboundURL("http://127.0.0.1:\(hookPort)/hook")!], secret: secret,
                    timeout: .milliseconds(300), drainTimeout: .milliseconds(200)),
                client: HTTPClient(group: MultiThreadedEventLoopGroup.singleton, logger: testLogger), logger: testLogger
            )
            let services = ServiceGroup(configuration: .init(services: [dispatcher], logger: testLogger))
            let running = Task { try await services.run() }
            for index in 0..<5 { dispatcher.send(WebhookEvent(name: .roomOccupied, room: "r\(index)")) }
            let stopping = ContinuousClock.now
            await services.triggerGracefulShutdown()
            try await running.value
            // The POST out when the drain began times out (300 ms); past the drain's deadline nothing is tried again.
            #expect(ContinuousClock.now - stopping < .seconds(3))
            #expect(dispatcher.counts.delivered == 0)
            #expect(dispatcher.counts.abandoned == 5, "\(dispatcher.counts)")
        }
    }

    @Test("URLs: http and https, ports, IPv6; no user info, fragments or other schemes")
    func urls() {
        #expect(
            OutboundURL("https://hooks.example.com/switchboard?x=1")?.description
                == "https://hooks.example.com/switchboard?x=1")
        #expect(OutboundURL("http://127.0.0.1:8081")?.target == "/")
        #expect(OutboundURL("http://[::1]:9000/h")?.host == "::1")
        for bad in ["ftp://x/", "http://", "http://u:p@x/", "http://x/#f", "http://x:0/", "http://x:99999/", "x"] {
            #expect(OutboundURL(bad) == nil, "\(bad)")
        }
    }
}
