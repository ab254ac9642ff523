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
}
