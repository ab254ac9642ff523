import ArgumentParser
import Foundation
import Logging
import NIOCore
import SwitchboardNode

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What every serving subcommand does before and around its node: flags, config file and environment into a
/// settings reader; logging; the open-file limit; and start-up failures as one clear line and an exit code (64 for
/// settings, 1 for a port that cannot be listened on). The only place the process exits early.
enum Launch {
    /// The settings `arguments` (flags of `catalog`) and the environment give, over the config file they name
    /// (`--config`, or `SWITCHBOARD_CONFIG`) once it is checked; `nil` when `--help` was answered.
    static func read(_ arguments: [String], catalog: [Setting], command: String) async throws -> SettingsReader? {
        let parsed: FlagParser.Parsed
        do {
            parsed = try FlagParser.parse(arguments, settings: catalog + [NodeConfiguration.configFile])
        } catch {
            throw self.usageError(["\(error)"])
        }
        if parsed.wantsHelp {
            print(Self.help(command: command, catalog: catalog))
            return nil
        }
        let environment = ProcessInfo.processInfo.environment
        var flags = parsed.values
        let file =
            flags.removeValue(forKey: NodeConfiguration.configFile.key)?.last
            ?? environment[NodeConfiguration.configFile.variable].flatMap { $0.isEmpty ? nil : $0 }
        if let file {
            let problems = ConfigFile.problems(atPath: file)
            guard problems.isEmpty else { throw self.usageError(problems.map { "\(file): \($0)" }) }
        }
        do {
            return try await SettingsReader(flags: flags, environment: environment, configFile: file)
        } catch {
            throw self.usageError(["\(file ?? "the config file"): \(error)"])
        }
    }

    /// `--help` of a serving subcommand: its settings, from their definitions.
    static func help(command: String, catalog: [Setting]) -> String {
        """
        USAGE: switchboard \(command) [settings]

        Every setting is a flag, an environment variable and a key of the config file (the flag without its dashes);
        a flag wins over the variable, the variable over the file.

          --config <file>
              \(NodeConfiguration.configFile.help) (env \(NodeConfiguration.configFile.variable))
        \(NodeConfiguration.help(for: catalog))
          --help
              Show this list.
        """
    }

    /// `body`'s value; its error printed as `switchboard: …` lines and exit code 64.
    static func orExit<Value, Failure: Error>(_ body: () async throws(Failure) -> Value) async throws -> Value {
        do {
            return try await body()
        } catch let error as ConfigurationError {
            throw self.usageError(error.problems)
        } catch {
            throw self.usageError(["\(error)"])
        }
    }

    /// Prints each problem as `switchboard: …` on standard error; the exit code of a usage error (EX_USAGE).
    static func usageError(_ problems: [String]) -> ExitCode {
        for problem in problems { printError("switchboard: \(problem)") }
        return ExitCode(64)
    }

    /// Runs a server until it stops; a port that cannot be listened on is one line and exit code 1.
    static func serving(host: String, port: Int, _ body: () async throws -> Void) async throws {
        raiseOpenFileLimit()
        do {
            try await body()
        } catch let error as IOError where error.errnoCode == EADDRINUSE {
            printError("switchboard: cannot listen on \(host):\(port): the address is already in use")
            throw ExitCode(1)
        } catch let error as IOError {
            printError("switchboard: cannot listen on \(host):\(port): \(error)")
            throw ExitCode(1)
        } catch let error as NodeError {
            throw self.usageError(["\(error)"])
        }
    }

    /// Bootstraps logging as the settings say (the only place it is done) and returns the process's logger.
    static func bootstrapLogging(_ settings: LogSettings) -> Logger {
        let level = settings.level
        let json = settings.format == .json
        LoggingSystem.bootstrap { label in
            if json { return JSONLogHandler(label: label, logLevel: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        return Logger(label: "switchboard")
    }

    /// Raises the soft open-file limit to the hard one, as Go's runtime does: each connection is a descriptor, and a
    /// distribution's default soft limit (1,024 under systemd) would cap a server far below what it can hold. The
    /// server's default connection cap follows the limit this leaves.
    static func raiseOpenFileLimit() {
        #if canImport(Glibc)
            var limit = rlimit()
            guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
            let soft = limit.rlim_cur
            limit.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
                Logger(label: "switchboard").info(
                    "Open-file limit raised to the hard limit",
                    metadata: ["from": "\(soft)", "to": "\(limit.rlim_max)"])
            }
        #endif
    }
}

/// Writes `message` and a newline to standard error.
func printError(_ message: String) {
    let line = message + "\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}
