import Foundation
import SwitchboardNode
import Testing

@Suite("Settings: flags over the environment over the config file")
struct SettingsReaderTests {
    private func value(_ reader: SettingsReader, _ key: String) throws -> [String]? {
        reader.value(try #require(NodeConfiguration.setting(named: key)))?.values
    }

    @Test("a file sets every setting; the environment wins where it sets one; an empty variable sets nothing")
    func fileUnderEnvironment() async throws {
        let directory = try TemporaryDirectory()
        let example = try String(contentsOfFile: ConfigFileTests.example, encoding: .utf8)
        let file = try directory.write("all.yaml", ConfigFileTests.uncommented(example))
        let fileOnly = try await SettingsReader(environment: [:], configFile: file)
        for setting in NodeConfiguration.settings {
            let read = fileOnly.value(setting)
            #expect(read != nil, "\(setting.key) is not read from the file")
            #expect(read?.source == .file)
        }
        #expect(try self.value(fileOnly, "trusted-proxy") == ["127.0.0.1", "::1"])
        #expect(try self.value(fileOnly, "private-room") == ["team-*", "staff"])
        #expect(try self.value(fileOnly, "history-ttl") == ["86400"])
        let layered = try await SettingsReader(
            environment: ["SWITCHBOARD_PORT": "9001", "SWITCHBOARD_HOST": ""], configFile: file)
        #expect(try self.value(layered, "port") == ["9001"])
        #expect(layered.value(try #require(NodeConfiguration.setting(named: "port")))?.source == .environment)
        #expect(try self.value(layered, "host") == self.value(fileOnly, "host"))
        #expect(layered.configFile == file)
        let flagged = try await SettingsReader(
            flags: ["port": ["9002"]], environment: ["SWITCHBOARD_PORT": "9001"], configFile: file)
        #expect(try self.value(flagged, "port") == ["9002"])
    }

    @Test("values as each layer spells them: lists split by their separator, toggles true or false")
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
        let settings = try await SettingsReader(environment: [:], configFile: file)
        #expect(try self.value(settings, "trusted-proxy") == ["10.0.0.0/8", "127.0.0.1"])
        #expect(try self.value(settings, "allowed-origin") == ["https://chat.example.com"])
        #expect(
            try self.value(settings, "publish-key") == [
                "orders:0123456789abcdef:orders.*,user:*", "alerts:fedcba9876543210:alerts",
            ])
        #expect(try self.value(settings, "echo") == ["true"])
        #expect(try self.value(settings, "require-origin") == ["false"])
        #expect(try self.value(settings, "max-rooms") == ["500"])
        #expect(try self.value(settings, "say-rate") == ["2.5"])
        #expect(try self.value(settings, "port") == nil)
        let environment = try await SettingsReader(environment: [
            "SWITCHBOARD_TRUSTED_PROXIES": "::1, 10.0.0.1", "SWITCHBOARD_ECHO": "1", "SWITCHBOARD_REQUIRE_ORIGIN": "0",
            "SWITCHBOARD_PUBLISH_KEYS": "a:0123456789abcdef:x,y;b:fedcba9876543210:z",
        ])
        #expect(try self.value(environment, "trusted-proxy") == ["::1", "10.0.0.1"])
        #expect(try self.value(environment, "echo") == ["true"])
        #expect(try self.value(environment, "require-origin") == ["false"])
        #expect(try self.value(environment, "publish-key") == ["a:0123456789abcdef:x,y", "b:fedcba9876543210:z"])
        // A flag's value is taken whole: a publish key's patterns keep their commas.
        let flags = try FlagParser.parse(
            ["--publish-key", "a:0123456789abcdef:x,y", "--echo", "--port=7"], settings: NodeConfiguration.settings)
        #expect(flags.values == ["publish-key": ["a:0123456789abcdef:x,y"], "echo": ["true"], "port": ["7"]])
    }
}
