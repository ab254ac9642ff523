import Foundation
import SwitchboardNode
import Testing

@Suite("Config file: check-config's problems, line by line")
struct ConfigFileTests {
    @Test("every problem of a file is reported with its line, in order")
    func problemsLineByLine() {
        let text = """
            # a comment
            port: 70000
            prot: 9000
            --echo: true
            SWITCHBOARD_HOST: 0.0.0.0
            log-level: loud
            trusted-proxy:
              - 10.0.0.0/8
              - not-an-ip
            redis: http://x
            history-ttl:
            echo: maybe
            max-rooms: [1, 2]
            host: {a: b}
            say-rate: 0
            jwt-algorithm: HS384
            jwt-secret: 0123456789abcdef0123456789abcdef
            tls-key: /etc/key.pem
            """
        let problems = ConfigFile.problems(in: text, checkingFiles: false).map(\.description)
        #expect(
            problems == [
                #"line 2: port must be 0 to 65535, not "70000""#,
                #"line 3: unknown setting "prot"; did you mean port?"#,
                #"line 4: unknown setting "--echo"; write it without dashes: echo"#,
                #"line 5: unknown setting "SWITCHBOARD_HOST"; that is the environment variable, the file's key is host"#,
                #"line 6: log-level must be one of trace, debug, info, notice, warning, error, critical, not "loud""#,
                #"line 9: trusted-proxy: each must be an IP address or a CIDR range (10.0.0.0/8), not "not-an-ip""#,
                "line 10: redis: invalid Redis URL http://x: it must start with redis:// or rediss:// (unix sockets "
                    + "are not supported)",
                "line 11: history-ttl has no value: give one, or remove the line",
                #"line 12: echo must be true or false, not "maybe""#,
                "line 13: max-rooms must be a whole number",
                "line 14: host must be a string",
                #"line 15: say-rate must be a number above 0 and at most 1000000, not "0""#,
                "line 17: jwt-secret must have 48 bytes or more for HS384",
                "line 18: tls-key needs tls-cert (the certificate chain)",
            ])
    }

    @Test("hints for unknown keys: the nearest setting within 2 edits, else where the names are")
    func hints() {
        let text = "max-roms: 5\nHISTORY_SIZE: 5\nlog_format: json\nsomething-else-entirely: 1\n"
        #expect(
            ConfigFile.problems(in: text).map(\.description) == [
                #"line 1: unknown setting "max-roms"; did you mean max-rooms?"#,
                #"line 2: unknown setting "HISTORY_SIZE"; did you mean history-size?"#,
                #"line 3: unknown setting "log_format"; did you mean log-format?"#,
                #"line 4: unknown setting "something-else-entirely" (switchboard serve --help lists them, "#
                    + "without the dashes)",
            ])
    }

    @Test("a file that is not settings: duplicates, bad YAML, a list, too large, not UTF-8, missing")
    func filesThatAreNotSettings() throws {
        #expect(
            ConfigFile.problems(in: "port: 1\nhost: a\nport: 2\n").map(\.description) == [
                "line 3: port is set twice (first on line 1)"
            ])
        #expect(
            ConfigFile.problems(in: "port: [1\n").map(\.description) == [
                "line 2: not YAML: did not find expected ',' or ']' (column 1)"
            ])
        #expect(
            ConfigFile.problems(in: "- port\n").map(\.description) == [
                "line 1: the file must be settings, one `key: value` per line"
            ])
        #expect(ConfigFile.problems(in: "").isEmpty)
        #expect(ConfigFile.problems(in: "# nothing set yet\n").isEmpty)
        let large = String(repeating: "# padding\n", count: ConfigFile.maxBytes / 10 + 1)
        #expect(
            ConfigFile.problems(in: large).map(\.description) == [
                "the file has more than 1048576 bytes; a config file has less"
            ])
        let directory = try TemporaryDirectory()
        let binary = directory.path + "/binary.yaml"
        try Data([0x70, 0x6F, 0x72, 0x74, 0x3A, 0x20, 0xFF, 0xFE]).write(to: URL(fileURLWithPath: binary))
        #expect(ConfigFile.problems(atPath: binary).map(\.description) == ["the file is not UTF-8 text"])
        #expect(
            ConfigFile.problems(atPath: directory.path + "/missing.yaml").map(\.description) == [
                "cannot read \(directory.path)/missing.yaml: No such file or directory"
            ])
    }

    @Test("files it names must be readable, unless told not to look")
    func namedFiles() throws {
        let directory = try TemporaryDirectory()
        let certificate = directory.path + "/server.pem"
        try "not checked here".write(toFile: certificate, atomically: true, encoding: .utf8)
        let text = "tls-cert: \(certificate)\ntls-key: \(directory.path)/server.key\n"
        #expect(
            ConfigFile.problems(in: text).map(\.description) == [
                "line 2: tls-key: cannot read \(directory.path)/server.key: No such file or directory"
            ])
        #expect(ConfigFile.problems(in: text, checkingFiles: false).isEmpty)
    }

    @Test("a secret's value never appears in a problem")
    func secretsAreNotShown() {
        let text = """
            publish-token: short-secret
            jwt-secret: tiny-hmac-secret
            publish-key: orders:tinysecret:orders.*
            redis: redis://:hunter2hunter2@localhost:99999
            """
        let problems = ConfigFile.problems(in: text, checkingFiles: false).map(\.description)
        #expect(problems.count == 4)
        for problem in problems {
            for secret in ["short-secret", "tiny-hmac-secret", "tinysecret", "hunter2"] {
                #expect(!problem.contains(secret), "\(problem)")
            }
        }
    }

    @Test("deploy/switchboard.yaml is good, names every setting, and with every line uncommented sets them all")
    func annotatedExample() throws {
        let text = try String(contentsOfFile: Self.example, encoding: .utf8)
        #expect(ConfigFile.problems(in: text, checkingFiles: false).map(\.description) == [])
        let everything = Self.uncommented(text)
        // Every line set sets both kinds of Redis, which go one at a time: that is the one problem.
        let problems = ConfigFile.problems(in: everything, checkingFiles: false).map(\.description)
        #expect(
            problems.count == 1
                && problems.first?.hasSuffix("redis and redis-cluster are two ways to one thing: give one") == true,
            "\(problems)")
        let keys = Set(
            everything.split(separator: "\n").compactMap { line -> String? in
                guard let colon = line.firstIndex(of: ":"), line.first?.isLetter == true else { return nil }
                return String(line[..<colon])
            })
        #expect(keys == Set(NodeConfiguration.settings.map(\.key)))
    }

    /// The example with each commented-out setting (`# key: value`) set.
    static func uncommented(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { line in
            let body = line.dropFirst(2)
            guard line.hasPrefix("# "), let colon = body.firstIndex(of: ":"),
                NodeConfiguration.setting(named: String(body[..<colon])) != nil
            else { return String(line) }
            return String(body)
        }.joined(separator: "\n")
    }

    static let example = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("deploy/switchboard.yaml").path
}

/// A directory under /tmp, removed when the value goes.
final class TemporaryDirectory: Sendable {
    let path: String

    init() throws {
        self.path = NSTemporaryDirectory() + "switchboard-config-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: true)
    }

    deinit { try? FileManager.default.removeItem(atPath: self.path) }

    func write(_ name: String, _ text: String) throws -> String {
        let file = self.path + "/" + name
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}
