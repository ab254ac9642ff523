import ArgumentParser
import Logging
import NIOCore
import SwitchboardDemos
import SwitchboardNode
import SwitchboardServer

/// The default subcommand: a Switchboard node, configured by flags over the environment over a config file.
///
/// Its flags are the node's settings, each defined once in ``NodeConfiguration``: they are parsed by
/// ``FlagParser`` (not ArgumentParser, which would need each written a second time), and `--help` lists them from
/// the same definitions.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the Switchboard chat server (the default).",
        // `--help` is one of the settings' flags here: the list comes from the settings themselves.
        helpNames: []
    )

    @Argument(parsing: .captureForPassthrough, help: "Settings: --key value (see --help).")
    var settings: [String] = []

    func run() async throws {
        let settings = try await Launch.read(self.settings, catalog: NodeConfiguration.settings, command: "serve")
        guard let settings else { return }
        let configuration = try await Launch.orExit { () throws(ConfigurationError) in
            try NodeConfiguration(reader: settings)
        }
        let logger = Launch.bootstrapLogging(configuration.log)
        let node = try await Launch.orExit { () async throws(NodeError) in
            try await Node(configuration: configuration, logger: logger)
        }
        try await Launch.serving(host: configuration.server.host, port: configuration.server.port) {
            try await node.runService()
        }
    }
}

/// `hijack-demo`: the seed's `hijack.ru`.
struct HijackDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hijack-demo",
        abstract: "Serve the seed's hijack.ru: GET /hijack_req (full hijack) and GET /hijack_res (partial hijack).",
        helpNames: []
    )

    @Argument(parsing: .captureForPassthrough, help: "Settings: --key value (see --help).")
    var settings: [String] = []

    func run() async throws {
        let catalog = NodeConfiguration.serverSettings
        let settings = try await Launch.read(self.settings, catalog: catalog, command: "hijack-demo")
        guard let settings else { return }
        var parser = SettingsParser(settings)
        let server = ServerSettings(&parser)
        let log = LogSettings(&parser)
        guard parser.problems.isEmpty else { throw Launch.usageError(parser.problems) }
        let logger = Launch.bootstrapLogging(log)
        try await Launch.serving(host: server.host, port: server.port) {
            try await Node.serve(HijackDemo.makeApplication(), settings: server, name: "Hijack demo", logger: logger)
        }
    }
}
