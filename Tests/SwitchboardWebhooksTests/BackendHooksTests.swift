import Foundation
import HTTPTypes
import NIOCore
import NIOPosix
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

/// A real backend (our own server on a port of its own) answering the connect, join and say hooks.
private var backend: some Application {
    var router = Router()
    router.post("/connect") { request in
        let body = try await request.body.collect(upTo: 1 << 16)
        let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        let cookie = (json?["headers"] as? [String: String])?["cookie"] ?? ""
        let answer =
            switch cookie {
            case "session=alice": #"{"user":"42","name":"Alice"}"#
            case "session=banned": #"{"refuse":"this account is banned"}"#
            case "session=hang": try await hang()
            default: "{}"
            }
        return Response(headers: [.contentType: "application/json"], body: .init(string: answer))
    }
    router.post("/join") { request in
        let body = try await request.body.collect(upTo: 1 << 16)
        let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        let answer =
            json?["room"] as? String == "vault"
            ? #"{"allow":false,"reason":"the vault is for staff"}"# : #"{"allow":true}"#
        return Response(headers: [.contentType: "application/json"], body: .init(string: answer))
    }
    router.post("/say") { request in
        let body = try await request.body.collect(upTo: 1 << 16)
        let json = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        let text = json?["text"] as? String ?? ""
        // Answers out of order on purpose: a random wait of up to 30 ms per message.
        try await Task.sleep(for: .milliseconds(Int.random(in: 0...30)))
        let answer =
            if text.contains("spam") {
                #"{"reject":"no spam here"}"#
            } else if text.contains("darn") {
                #"{"text":"\#(text.replacingOccurrences(of: "darn", with: "d**n"))"}"#
            } else {
                "{}"
            }
        return Response(headers: [.contentType: "application/json"], body: .init(string: answer))
    }
    return router
}

private func hang() async throws -> String {
    try await Task.sleep(for: .seconds(30))
    return "{}"
}

/// The chat with hooks to `backendPort` (or to a port nothing listens on, with `unreachable`).
private func withHookedChat(
    backendPort: Int, failOpen: Bool = false, anonymous: Bool = true, timeout: TimeAmount = .seconds(5),
    sayOnly: Bool = false, _ body: @escaping @Sendable (Int) async throws -> Void
) async throws {
    let base = "http://127.0.0.1:\(backendPort)"
    let hooks = BackendHooks(
        configuration: BackendHookConfiguration(
            connect: sayOnly ? nil : OutboundURL(base + "/connect"), join: sayOnly ? nil : OutboundURL(base + "/join"),
            say: OutboundURL(base + "/say"), timeout: timeout, failOpen: failOpen),
        client: HTTPClient(group: MultiThreadedEventLoopGroup.singleton, logger: testLogger), logger: testLogger)
    var chat = ChatConfiguration()
    chat.rateLimits = .unlimited
    chat.hooks = hooks.chatHooks
    chat.auth = ChatAuthentication(verifier: nil, allowsAnonymous: anonymous)
    let app = ChatApplication.make(
        topics: Topics(broker: LocalBroker(), logger: testLogger), configuration: chat, logger: testLogger)
    try await withServer(app) { _, port in try await body(port) }
}

/// Connections established now from this machine to 127.0.0.1:`port`, from the kernel's table (IPv4; state 01).
private func establishedConnections(toPort port: Int) -> Int {
    // Read to the end: /proc files have no size, and a read by size gets nothing.
    guard let file = FileHandle(forReadingAtPath: "/proc/net/tcp") else { return 0 }
    defer { try? file.close() }
    let table = String(decoding: file.readDataToEndOfFile(), as: UTF8.self)
    let hex = String(port, radix: 16, uppercase: true)
    let remote = ":" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
    return table.split(separator: "\n").dropFirst().reduce(0) { count, line in
        let fields = line.split(separator: " ")
        return count + (fields.count > 3 && fields[2].hasSuffix(remote) && fields[3] == "01" ? 1 : 0)
    }
}

extension RawClient {
    /// Opens `/ws` with `cookie`; the upgrade's status.
    fileprivate func open(cookie: String?) async throws -> Int {
        var headers = ["Sec-WebSocket-Protocol: switchboard.chat.v1"]
        if let cookie { headers.append("Cookie: \(cookie)") }
        return try await self.handshake(path: "/ws", headers: headers).status
    }

    fileprivate func next(_ type: String) async throws -> [String: Any] {
        while true {
            let frame = try #require(try await self.readFrame(), "the socket closed")
            guard frame.opcode == 0x1 else { continue }
            let json = try JSONSerialization.jsonObject(with: Data(frame.payload.readableBytesView)) as? [String: Any]
            if json?["type"] as? String == type { return json ?? [:] }
        }
    }

    fileprivate func request(_ json: String) async throws {
        try await self.send(clientFrame(0x1, Array(json.utf8)))
    }
}

@Suite("Backend hooks: connect, join and say asked of a real backend", .timeLimit(.minutes(1)))
struct BackendHooksTests {
    @Test("connect: the backend's user from the cookie, a refusal is a 403, no answer is anonymous")
    func connect() async throws {
        try await withServer(backend) { _, backendPort in
            try await withHookedChat(backendPort: backendPort) { port in
                try await RawClient.withConnection(port: port) { alice in
                    #expect(try await alice.open(cookie: "session=alice") == 101)
                    let you = try await alice.next("authenticated")["you"] as? [String: Any]
                    #expect(you?["user"] as? String == "42" && you?["nick"] as? String == "Alice")
                }
                try await RawClient.withConnection(port: port) { banned in
                    let status = try await banned.open(cookie: "session=banned")
                    #expect(status == 403)
                }
                try await RawClient.withConnection(port: port) { guest in
                    #expect(try await guest.open(cookie: nil) == 101)
                    _ = try await guest.next("welcome")
                }
            }
        }
    }

    @Test("join: the backend refuses a room with its reason; others are joined")
    func join() async throws {
        try await withServer(backend) { _, backendPort in
            try await withHookedChat(backendPort: backendPort) { port in
                try await RawClient.withConnection(port: port) { client in
                    #expect(try await client.open(cookie: "session=alice") == 101)
                    _ = try await client.next("authenticated")
                    try await client.request(#"{"type":"join","room":"vault","ref":"1"}"#)
                    let refused = try await client.next("error")
                    #expect(refused["code"] as? String == "forbidden" && refused["ref"] as? String == "1")
                    #expect(refused["message"] as? String == "the vault is for staff")
                    try await client.request(#"{"type":"join","room":"lobby"}"#)
                    #expect(try await client.next("joined")["room"] as? String == "lobby")
                }
            }
        }
    }

    @Test("say: rewritten, rejected or sent as is, and in the order sent although the backend answers out of order")
    func say() async throws {
        try await withServer(backend) { _, backendPort in
            try await withHookedChat(backendPort: backendPort) { port in
                try await RawClient.withConnection(port: port) { client in
                    #expect(try await client.open(cookie: nil) == 101)
                    try await client.request(#"{"type":"join","room":"lobby"}"#)
                    _ = try await client.next("joined")
                    try await client.request(#"{"type":"say","room":"lobby","text":"buy spam now","ref":"s"}"#)
                    let rejected = try await client.next("error")
                    #expect(
                        rejected["code"] as? String == "rejected" && rejected["message"] as? String == "no spam here")
                    for index in 0..<30 {
                        let text = index == 7 ? "darn it" : "m\(index)"
                        try await client.request(#"{"type":"say","room":"lobby","text":"\#(text)"}"#)
                    }
                    var texts: [String] = []
                    for _ in 0..<30 { texts.append(try await client.next("message")["text"] as? String ?? "") }
                    #expect(texts == (0..<30).map { $0 == 7 ? "d**n it" : "m\($0)" })
                }
            }
        }
    }

    @Test("A backend that is down or hangs: fail closed refuses; fail open lets in, anonymous")
    func failure() async throws {
        // Nothing listens on this port: every hook call fails at once.
        let unreachable = try await withServer(backend) { _, port in port }
        try await withHookedChat(backendPort: unreachable) { port in
            try await RawClient.withConnection(port: port) { client in
                let status = try await client.open(cookie: "session=alice")
                #expect(status == 403, "closed: no login service, no socket")
            }
        }
        try await withHookedChat(backendPort: unreachable, failOpen: true) { port in
            try await RawClient.withConnection(port: port) { client in
                #expect(try await client.open(cookie: "session=alice") == 101, "open: anonymous")
                try await client.request(#"{"type":"say","room":"lobby","text":"x"}"#)
                try await client.request(#"{"type":"join","room":"lobby"}"#)
                _ = try await client.next("joined")
                try await client.request(#"{"type":"say","room":"lobby","text":"unmoderated"}"#)
                #expect(try await client.next("message")["text"] as? String == "unmoderated")
            }
        }
        try await withServer(backend) { _, backendPort in
            try await withHookedChat(backendPort: backendPort, timeout: .milliseconds(500)) { port in
                try await RawClient.withConnection(port: port) { client in
                    let start = ContinuousClock.now
                    let status = try await client.open(cookie: "session=hang")
                    #expect(status == 403)
                    #expect(ContinuousClock.now - start < .seconds(5), "refused at the 500 ms hook timeout")
                }
            }
        }
    }

    @Test("A say hook whose backend never answers: 16 connections at once, every message refused in time")
    func silentBackend() async throws {
        // A backend that accepts connections and never answers (the audit's: 8,000 connections opened at once).
        let connections = Locked((open: 0, most: 0, total: 0))
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                connections.withLock {
                    $0.open += 1
                    $0.total += 1
                    $0.most = max($0.most, $0.open)
                }
                channel.closeFuture.whenComplete { _ in connections.withLock { $0.open -= 1 } }
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        let backendPort = try #require(silent.localAddress?.port)
        // The kernel's count of our connections to the backend, sampled while the hooks run: the backend's own count
        // lags (it sees a close when its loop gets to it), the client's own counters are what is under test.
        let sampler = Task {
            var most = 0
            while !Task.isCancelled {
                most = max(most, establishedConnections(toPort: backendPort))
                try? await Task.sleep(for: .milliseconds(5))
            }
            return most
        }
        try await withHookedChat(backendPort: backendPort, timeout: .milliseconds(500), sayOnly: true) { port in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        try await RawClient.withConnection(port: port, deadline: .seconds(30)) { client in
                            let status = try await client.open(cookie: nil)
                            #expect(status == 101)
                            try await client.request(#"{"type":"join","room":"lobby"}"#)
                            _ = try await client.next("joined")
                            for n in 0..<10 {
                                try await client.request(#"{"type":"say","room":"lobby","text":"m\#(n)"}"#)
                            }
                            var rejected = 0
                            while rejected < 10 {
                                let error = try await client.next("error")
                                #expect(error["code"] as? String == "rejected", "\(error)")
                                rejected += 1
                            }
                            return rejected
                        }
                    }
                }
                var total = 0
                for try await rejected in group { total += rejected }
                #expect(total == 500, "every message answered (fail closed)")
            }
        }
        sampler.cancel()
        let most = await sampler.value
        // A request that timed out closes its connection (its answer could still come): the next opens another once
        // that one's descriptor is closed. Unbounded before: one connection per call, 500 here, 8,000 in the audit.
        let seen = connections.withLock { $0 }
        let backend = "the backend counted \(seen.most) at once, \(seen.total) in all"
        #expect(most <= 16, "\(most) connections established at once; \(backend)")
        #expect(most > 0 && seen.total > 0, "the sampler saw the hooks' connections")
    }
}
