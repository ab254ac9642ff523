import ArgumentParser
import Logging
import NIOCore
import ServiceLifecycle
import Switchboard
import SwitchboardDemos
import SwitchboardServer

/// `switchboard`: the Switchboard server and its demos.
///
/// Serving is the default: `switchboard`, `switchboard --port 9000` and `switchboard serve --port 9000` do the
/// same. The root command takes the server's options itself (rather than through `defaultSubcommand`) so that
/// `switchboard --help` lists every flag.
@main
struct SwitchboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "Real-time messaging for Swift servers.",
        discussion: "Without a subcommand, serves like `switchboard serve`.",
        subcommands: [Serve.self, HijackDemoCommand.self, BenchCommand.self]
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        try await Serve.serve(self.options)
    }
}

/// Options every server subcommand takes.
struct ServerOptions: ParsableArguments {
    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The TCP port to listen on (0 picks a free one).")
    var port = 8080

    @Option(
        help: "The log level: trace, debug, info, notice, warning, error or critical (default: info).",
        transform: { text in
            guard let level = Logger.Level(rawValue: text.lowercased()) else {
                throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error, critical")
            }
            return level
        }
    )
    var logLevel: Logger.Level = .info

    func validate() throws {
        guard (0...65535).contains(self.port) else {
            throw ValidationError("--port must be between 0 and 65535, not \(self.port)")
        }
    }
}

/// The default subcommand: the Switchboard server.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the Switchboard server (the default)."
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        try await Self.serve(self.options)
    }

    static func serve(_ options: ServerOptions) async throws {
        try await runServer(LandingPage.makeApplication(), options: options, name: "Switchboard")
    }
}

/// `hijack-demo`: the seed's `hijack.ru`.
struct HijackDemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hijack-demo",
        abstract: "Serve the seed's hijack.ru: GET /hijack_req (full hijack) and GET /hijack_res (partial hijack)."
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        try await runServer(HijackDemo.makeApplication(), options: self.options, name: "Hijack demo")
    }
}
