import ArgumentParser
import Foundation
import SwitchboardConfig
import SwitchboardLocks

/// The layers beneath the flags: the environment, and once `--config` is read, the config file under it. Set once
/// at start (``ServerOptions/loadConfigFile()``), before any setting is resolved.
let settingsLayers = Locked(LayeredSettings(environment: ProcessInfo.processInfo.environment))

/// What the environment or the config file sets for the setting with this environment variable, as the variable
/// would spell it; `nil` if neither does. The flag, where given, has already won.
func configured(_ variable: String) -> String? {
    guard let setting = Settings.variable(variable) else {
        // Every setting is in the catalog (a test checks it against --help); this is for anything else.
        return environment(variable)
    }
    let layers = settingsLayers.withLock { $0 }
    return layers.value(setting)
}

/// Puts the checked config file at `path` under the environment; one line and exit code 64 if it cannot be read.
func loadSettingsLayers(configFile path: String) async {
    do {
        let layers = try await LayeredSettings(environment: ProcessInfo.processInfo.environment, configFile: path)
        settingsLayers.withLock { $0 = layers }
    } catch {
        exitWithUsageError("\(path): \(error)")
    }
}

/// Checks a flag's value by its setting's rules, the ones the config file and `check-config` go by.
func checkFlag(_ key: String, _ value: (some CustomStringConvertible)?) throws {
    guard let value, let setting = Settings.named(key), let problem = setting.problem(with: "\(value)") else { return }
    throw ValidationError("--\(key)\(problem.hasPrefix("must") ? " " : ": ")\(problem)")
}
