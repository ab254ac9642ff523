import ArgumentParser
import Foundation
import SwitchboardNode
import SwitchboardTesting
import Testing

@testable import switchboard

/// Each subcommand gets the options it names, parsed as the command line is, and the real binary does what they say.
@Suite("Subcommands and their options", .serialized)
struct SubcommandOptionsTests {
    @Test("serve is the default; its --help lists every setting with its variable, and nothing else")
    func serveFlagsAreTheSettings() throws {
        let help = Launch.help(command: "serve", catalog: NodeConfiguration.settings)
        let flags = Set(help.matches(of: /--([a-z][a-z-]+)/).map { String($0.1) })
        let settings = Set(NodeConfiguration.settings.map(\.key))
        #expect(flags.subtracting(["help", "config"]) == settings)
        for setting in NodeConfiguration.settings {
            #expect(help.contains(setting.variable), "--help does not name \(setting.variable)")
            #expect(help.contains(setting.help), "--help does not explain \(setting.flag)")
        }
        #expect(try SwitchboardCommand.parseAsRoot([]) is Serve)
        let serve = try #require(
            try SwitchboardCommand.parseAsRoot(["--port", "9000", "--redis", "redis://r:1"]) as? Serve)
        #expect(serve.settings == ["--port", "9000", "--redis", "redis://r:1"])
        let spelled = try #require(
            try SwitchboardCommand.parseAsRoot(["serve", "--echo", "--config", "f.yaml"]) as? Serve)
        #expect(spelled.settings == ["--echo", "--config", "f.yaml"])
    }

    @Test("hijack-demo takes the server's settings only; bench broker its own --redis; token its key; check-config")
    func otherSubcommands() throws {
        let demo = try #require(
            try SwitchboardCommand.parseAsRoot(["hijack-demo", "--port", "0", "--config", "d.yaml"])
                as? HijackDemoCommand)
        #expect(demo.settings == ["--port", "0", "--config", "d.yaml"])
        #expect(throws: FlagParser.Problem.self) {
            try FlagParser.parse(["--redis", "redis://x"], settings: NodeConfiguration.serverSettings)
        }
        let bench = try #require(
            try SwitchboardCommand.parseAsRoot(["bench", "broker", "--redis", "redis://r:1", "--messages", "100"])
                as? BrokerBench)
        #expect(bench.redis == "redis://r:1")
        let token = try #require(
            try SwitchboardCommand.parseAsRoot(["token", "--user", "ada", "--secret", "s", "--room", "team-*"])
                as? TokenCommand)
        #expect(token.user == "ada" && token.secret == "s" && token.room == ["team-*"])
        let check = try #require(
            try SwitchboardCommand.parseAsRoot(["check-config", "x.yaml", "--skip-files"]) as? CheckConfigCommand)
        #expect(check.file == "x.yaml" && check.skipFiles)
        #expect(throws: (any Error).self) { try SwitchboardCommand.parseAsRoot(["check-config"]) }
    }

    @Test("the binary: a bad flag, variable or unknown flag is one line each and exit code 64; --help exits 0")
    func badSettings() async throws {
        let flag = try await run(["--port", "70000"])
        #expect(flag.status == 64 && flag.output == "switchboard: --port must be 0 to 65535, not \"70000\"\n")
        let variable = try await run([], environment: ["SWITCHBOARD_PORT": "eighty"])
        #expect(variable.status == 64)
        #expect(variable.output == "switchboard: SWITCHBOARD_PORT must be 0 to 65535, not \"eighty\"\n")
        let unknown = try await run(["serve", "--prot", "1"])
        #expect(unknown.status == 64 && unknown.output == "switchboard: unknown flag --prot; did you mean --port?\n")
        let help = try await run(["serve", "--help"])
        #expect(help.status == 0 && help.output.contains("--max-rooms <n>"))
    }

    @Test("the binary: bench broker --redis tries that Redis; check-config prints each problem and exits 1")
    func theBinary() async throws {
        let unreachable = "redis://127.0.0.1:\(try unusedPort())"
        let bench = try await run(["bench", "broker", "--redis", unreachable, "--messages", "100"])
        #expect(bench.status != 0)
        #expect(bench.output.contains("cannot connect to \(unreachable)"), "\(bench.output)")
        let directory = NSTemporaryDirectory() + "switchboard-check-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let bad = directory + "/bad.yaml"
        try "port: 70000\nprot: 1\necho: true\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let checked = try await run(["check-config", bad])
        #expect(checked.status == 1)
        #expect(
            checked.output == """
                \(bad):1: port must be 0 to 65535, not "70000"
                \(bad):2: unknown setting "prot"; did you mean port?

                """)
        let good = directory + "/good.yaml"
        try "port: 8081\necho: true\n".write(toFile: good, atomically: true, encoding: .utf8)
        let passed = try await run(["check-config", good])
        #expect(passed.status == 0 && passed.output == "\(good): ok\n")
        let refused = try await run(["--config", bad])
        #expect(refused.status == 64)
        #expect(refused.output.hasPrefix("switchboard: \(bad): line 1: port must be 0 to 65535"), "\(refused.output)")
    }
}

/// The `switchboard` binary beside the test bundle, run to its end: its exit status and what it wrote (both streams).
/// Waited for on a thread of its own: blocking one of the few threads Swift Testing runs tests on stalls the others.
func run(_ arguments: [String], environment: [String: String] = [:]) async throws -> (status: Int32, output: String) {
    try await onItsOwnThread { try runBlocking(arguments, environment: environment) }
}

/// Runs `body` on a thread of its own: parsing ArgumentParser commands in a debug build costs milliseconds each, and
/// a test that blocks one of the two threads Swift Testing shares here slows every other test's clients.
func onItsOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
    }
}

private func runBlocking(_ arguments: [String], environment: [String: String]) throws -> (status: Int32, output: String)
{
    let process = Process()
    process.executableURL = switchboardBinary
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SWITCHBOARD_") }
        .merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// `.build/debug/switchboard`: SwiftPM builds it with the tests, which depend on it.
let switchboardBinary = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
    .appendingPathComponent("switchboard")

/// A port nothing listens on: bound, read and closed.
func unusedPort() throws -> Int {
    let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
            bind(socket, pointer, length) == 0 && getsockname(socket, pointer, &length) == 0
        }
    }
    guard bound else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// The `switchboard` binary serving in the background, its output in a file; stopped with SIGTERM.
final class LaunchedServer: Sendable {
    private let process: Process
    private let log: String

    init(arguments: [String], environment: [String: String] = [:]) throws {
        self.log = NSTemporaryDirectory() + "switchboard-launched-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: self.log, contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: self.log))
        let process = Process()
        process.executableURL = switchboardBinary
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("SWITCHBOARD_") }
            .merging(environment) { $1 }
        process.standardOutput = output
        process.standardError = output
        try process.run()
        self.process = process
    }

    /// What it wrote so far.
    func output() -> String { (try? String(contentsOfFile: self.log, encoding: .utf8)) ?? "" }

    /// The port from its start-up line (`listening on http://127.0.0.1:PORT/`), waited for up to 20 s.
    func port() async throws -> Int {
        for _ in 0..<200 {
            if let match = self.output().firstMatch(of: /listening on https?:\/\/127\.0\.0\.1:(\d+)\//),
                let port = Int(match.1)
            {
                return port
            }
            try #require(self.process.isRunning, "it exited: \(self.output())")
            try await Task.sleep(for: .milliseconds(100))
        }
        throw CancellationError()
    }

    func stop() {
        if self.process.isRunning {
            self.process.terminate()
            self.process.waitUntilExit()
        }
        try? FileManager.default.removeItem(atPath: self.log)
    }
}
