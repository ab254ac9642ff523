import ArgumentParser

/// `switchboard`: the Switchboard server and its tools.
///
/// Serving is the default subcommand: `switchboard`, `switchboard --port 9000` and `switchboard serve --port 9000`
/// do the same. The root command takes no options of its own, so each subcommand gets every option it names
/// (`switchboard bench broker --redis …` reaches the benchmark, not the server's `--redis`).
@main
struct SwitchboardCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchboard",
        abstract: "Real-time messaging for Swift servers.",
        discussion: "Without a subcommand, serves: `switchboard serve --help` lists the server's settings.",
        subcommands: [
            Serve.self, CheckConfigCommand.self, HijackDemoCommand.self, BenchCommand.self, TokenCommand.self,
        ],
        defaultSubcommand: Serve.self
    )
}
