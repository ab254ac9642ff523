import SwitchboardAuth
import Testing

@Suite("Allowed browser origins, from the configured address")
struct BrowserOriginsTests {
    @Test("A public URL's origin: scheme and host, the port only when it is not the scheme's default")
    func publicURL() {
        #expect(BrowserOrigins.origin(ofPublicURL: "https://chat.example.com/rooms?x=1") == "https://chat.example.com")
        #expect(BrowserOrigins.origin(ofPublicURL: "https://Chat.Example.com:443") == "https://chat.example.com")
        #expect(BrowserOrigins.origin(ofPublicURL: "http://chat.example.com:8080/") == "http://chat.example.com:8080")
        #expect(BrowserOrigins.origin(ofPublicURL: "http://[2001:db8::1]:9000") == "http://[2001:db8::1]:9000")
        for bad in ["chat.example.com", "ftp://x", "https://", "https://user@host", "https://host:port", "https://a b"]
        {
            #expect(BrowserOrigins.origin(ofPublicURL: bad) == nil, "\(bad)")
        }
    }

    @Test("The listening address: every loopback spelling for loopback, none for a wildcard or port 0")
    func listeningAddress() {
        #expect(
            BrowserOrigins.origins(listeningOn: "127.0.0.1", port: 8080) == [
                "http://127.0.0.1:8080", "https://127.0.0.1:8080", "http://localhost:8080", "https://localhost:8080",
                "http://[::1]:8080", "https://[::1]:8080",
            ])
        #expect(
            BrowserOrigins.origins(listeningOn: "chat.lan", port: 80) == ["http://chat.lan", "https://chat.lan:80"])
        #expect(BrowserOrigins.origins(listeningOn: "0.0.0.0", port: 8080).isEmpty)
        #expect(BrowserOrigins.origins(listeningOn: "::", port: 8080).isEmpty)
        #expect(BrowserOrigins.origins(listeningOn: "127.0.0.1", port: 0).isEmpty)
    }
}
