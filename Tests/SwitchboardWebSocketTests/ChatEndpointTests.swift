import NIOCore
import Switchboard
import SwitchboardDemos
import SwitchboardTesting
import Testing

@Suite("/chat")
struct ChatEndpointTests {
    @Test("Every text message reaches every /chat socket, sender included; a closed socket leaves the room")
    func broadcast() async throws {
        try await withServer(LandingPage.makeApplication()) { _, port in
            try await RawClient.withConnection(port: port) { alice in
                #expect(try await alice.handshake(path: "/chat").status == 101)
                try await RawClient.withConnection(port: port) { bob in
                    #expect(try await bob.handshake(path: "/chat").status == 101)
                    // Joining happens on the event loop right after the 101; a round trip makes sure both are in.
                    try await bob.send(clientFrame(0x1, text: "bob is here"))
                    #expect(try await bob.readFrame()?.text == "bob is here")
                    #expect(try await alice.readFrame()?.text == "bob is here")
                    try await alice.send(clientFrame(0x1, text: "hello <b>bob</b>"))
                    #expect(try await alice.readFrame()?.text == "hello <b>bob</b>")
                    #expect(try await bob.readFrame()?.text == "hello <b>bob</b>")
                    try await bob.send(clientFrame(0x8, closePayload(1000)))
                    #expect(try await bob.readFrame()?.closeCode == 1000)
                }
                try await alice.send(clientFrame(0x1, text: "alone now"))
                #expect(try await alice.readFrame()?.text == "alone now")
            }
        }
    }

    @Test("/echo returns a 1 MiB message sent in 16 fragments, byte for byte")
    func largeEcho() async throws {
        try await withServer(LandingPage.makeApplication()) { _, port in
            try await RawClient.withConnection(port: port, deadline: .seconds(30)) { client in
                #expect(try await client.handshake(path: "/echo").status == 101)
                let payload = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
                for i in 0..<16 {
                    let piece = Array(payload[(i * 65536)..<((i + 1) * 65536)])
                    try await client.send(clientFrame(i == 0 ? 0x2 : 0x0, piece, fin: i == 15))
                }
                let frame = try #require(try await client.readFrame())
                #expect(frame.opcode == 0x2)
                #expect(Array(frame.payload.readableBytesView) == payload)
            }
        }
    }
}
