import NIOCore
import NIOSSL
import Switchboard
import SwitchboardApi
import SwitchboardLocks
import SwitchboardNode
import SwitchboardPubSub
import SwitchboardRooms
import SwitchboardServer
import SwitchboardTesting
import SwitchboardTopics
import Testing

@Suite("The chat over TLS (wss://)", .timeLimit(.minutes(1)))
struct SecureChatTests {
    @Test("/chat and /ws over TLS: messages both ways, a clean close handshake, and a shutdown that does not wait")
    func wss() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        var configuration = testConfiguration()
        configuration.tls = try TLSCredentials(
            certificateChainPath: certificates.certificatePath, privateKeyPath: certificates.keyPath)
        let context = try certificates.clientContext()
        let app = ChatApplication.make(
            topics: Topics(broker: LocalBroker(), logger: testLogger),
            configuration: ChatConfiguration(allowedOrigins: ["https://localhost"]), logger: testLogger)
        let bodyEnded = Locked(ContinuousClock.now)
        try await withServer(app, configuration: configuration) { _, port in
            defer { bodyEnded.withLock { $0 = .now } }
            try await RawClient.withConnection(port: port, tls: context) { alice in
                #expect(try await alice.handshake(path: "/chat", headers: ["Origin: https://localhost"]).status == 101)
                try await RawClient.withConnection(port: port, tls: context) { bob in
                    #expect(try await bob.handshake(path: "/chat").status == 101)
                    try await alice.send(clientFrame(0x1, text: "over TLS"))
                    #expect(try await alice.readFrame()?.text == "over TLS")
                    #expect(try await bob.readFrame()?.text == "over TLS")
                    try await bob.send(clientFrame(0x8, closePayload(1000)))
                    #expect(try await bob.readFrame()?.closeCode == 1000)
                }
                try await RawClient.withConnection(port: port, tls: context) { rooms in
                    try await rooms.openRooms()
                    let joined = try await rooms.join("lobby")
                    #expect(joined["type"] as? String == "joined")
                }
            }
        }
        // The server's shutdown did not wait out TLS's 5 s close timeout on any connection.
        let shutdown = ContinuousClock.now - bodyEnded.withLock { $0 }
        #expect(shutdown < .seconds(4), "shutdown took \(shutdown)")
    }
}
