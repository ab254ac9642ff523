import Foundation
import SwitchboardTesting
import Testing

/// Flags over the environment over the config file, as the real binary resolves them.
@Suite("Config file < environment < flags: the binary", .serialized)
struct ConfigLayeringTests {
    @Test("the binary serves what the file says (port 0, echo on), and a flag overrides it")
    func theServerReadsTheFile() async throws {
        let directory = NSTemporaryDirectory() + "switchboard-served-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/switchboard.yaml"
        try "port: 0\necho: true\nlog-format: json\n".write(toFile: file, atomically: true, encoding: .utf8)
        // The file alone: echo on, JSON logs. Then the environment turns echo off and a flag picks text logs.
        let cases: [([String], [String: String], Bool)] = [
            (["--config", file], [:], true),
            (["--config", file, "--log-format", "text"], ["SWITCHBOARD_ECHO": "0"], false),
        ]
        for (arguments, environment, echoes) in cases {
            let server = try LaunchedServer(arguments: arguments, environment: environment)
            defer { server.stop() }
            let port = try await server.port()
            // /echo exists only when echo is on: a plain GET gets 400 (not an upgrade) rather than 404.
            let status = try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                return try await client.readResponse().status
            }
            #expect(status == (echoes ? 400 : 404))
            #expect(server.output().contains("{\"") == echoes, "\(server.output())")
        }
    }
}
