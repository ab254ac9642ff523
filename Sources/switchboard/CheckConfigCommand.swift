import ArgumentParser
import SwitchboardNode

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `check-config FILE`: what is wrong with a config file, line by line, without starting anything.
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a YAML config file: prints each problem with its line, exits 1 if there is one.",
        discussion: """
            Checks every key (a setting's name), every value (its type and range, URLs, addresses, patterns) and \
            that the files it names can be read, as the server does before it starts with --config. \
            deploy/switchboard.yaml is an annotated example.
            """
    )

    @Argument(help: "The config file.")
    var file: String

    @Flag(help: "Do not check that the certificate and key files it names can be read (on another machine).")
    var skipFiles = false

    func run() throws {
        let problems = ConfigFile.problems(atPath: self.file, checkingFiles: !self.skipFiles)
        guard !problems.isEmpty else {
            print("\(self.file): ok")
            return
        }
        for problem in problems {
            print("\(self.file):\(problem.line.map { "\($0):" } ?? "") \(problem.message)")
        }
        throw ExitCode(1)
    }
}
