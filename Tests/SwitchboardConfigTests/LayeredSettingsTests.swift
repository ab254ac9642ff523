import Foundation
import SwitchboardConfig
import Testing

@Suite("Layers: the environment over the config file")
struct LayeredSettingsTests {
    @Test("a file sets every setting; the environment wins where it sets one; an empty variable sets nothing")
    func fileUnderEnvironment() async throws {
        let directory = try TemporaryDirectory()
        let example = try String(contentsOfFile: ConfigFileTests.example, encoding: .utf8)
        let file = try directory.write("all.yaml", ConfigFileTests.uncommented(example))
        let fileOnly = try await LayeredSettings(environment: [:], configFile: file)
        for setting in Settings.all {
            if case .toggle = setting.kind {
                // The example writes each toggle's default, false: off, as if unset.
                #expect(fileOnly.value(setting) == nil, "\(setting.key)")
            } else {
                #expect(fileOnly.value(setting) != nil, "\(setting.key) is not read from the file")
            }
        }
        #expect(fileOnly.value(try #require(Settings.named("trusted-proxy"))) == "127.0.0.1,::1")
        #expect(fileOnly.value(try #require(Settings.named("private-room"))) == "team-*,staff")
        #expect(fileOnly.value(try #require(Settings.named("history-ttl"))) == "86400")
        let port = try #require(Settings.named("port"))
        let host = try #require(Settings.named("host"))
        let layered = try await LayeredSettings(
            environment: ["SWITCHBOARD_PORT": "9001", "SWITCHBOARD_HOST": ""], configFile: file)
        #expect(layered.value(port) == "9001")
        #expect(layered.value(host) == fileOnly.value(host))
        #expect(layered.configFile == file)
    }

    @Test("values as the environment spells them: lists joined by their separator, toggles 1 or nothing")
    func spellings() async throws {
        let directory = try TemporaryDirectory()
        let file = try directory.write(
            "some.yaml",
            """
            trusted-proxy: [10.0.0.0/8, 127.0.0.1]
            allowed-origin: https://chat.example.com
            publish-key:
              - orders:0123456789abcdef:orders.*,user:*
              - alerts:fedcba9876543210:alerts
            echo: true
            require-origin: false
            max-rooms: 500
            say-rate: 2.5
            """)
        let settings = try await LayeredSettings(environment: [:], configFile: file)
        func value(_ key: String) throws -> String? { settings.value(try #require(Settings.named(key))) }
        #expect(try value("trusted-proxy") == "10.0.0.0/8,127.0.0.1")
        #expect(try value("allowed-origin") == "https://chat.example.com")
        #expect(try value("publish-key") == "orders:0123456789abcdef:orders.*,user:*;alerts:fedcba9876543210:alerts")
        #expect(try value("echo") == "1")
        #expect(try value("require-origin") == nil)
        #expect(try value("max-rooms") == "500")
        #expect(try value("say-rate") == "2.5")
        #expect(try value("port") == nil)
        let environment = LayeredSettings(environment: [
            "SWITCHBOARD_TRUSTED_PROXIES": "::1", "SWITCHBOARD_ECHO": "1", "SWITCHBOARD_REQUIRE_ORIGIN": "0",
        ])
        #expect(environment.value(try #require(Settings.named("trusted-proxy"))) == "::1")
        #expect(environment.value(try #require(Settings.named("echo"))) == "1")
        #expect(environment.value(try #require(Settings.named("require-origin"))) == nil)
    }
}
