import Configuration
import SystemPackage

/// The settings beneath the command line: the environment over a config file, layered by swift-configuration.
///
/// A flag wins over both; that layer is the executable's (ArgumentParser), which asks this for what no flag set.
/// Values come back as the environment spells them (a list joined by its separator, a toggle as `1`), so each is
/// parsed and checked in one place whichever layer it came from.
public struct LayeredSettings: Sendable {
    private let reader: ConfigReader
    /// Where the file layer came from, for logs; `nil` without one.
    public let configFile: String?

    /// The environment alone.
    public init(environment: [String: String]) {
        self.reader = ConfigReader(providers: [Self.environmentProvider(environment)])
        self.configFile = nil
    }

    /// The environment over the YAML file at `path`. Check the file first (``ConfigFile/problems(atPath:checkingFiles:)``):
    /// this throws on a file it cannot read or parse, without saying where.
    public init(environment: [String: String], configFile path: String) async throws {
        let file = try await FileProvider<YAMLSnapshot>(filePath: FilePath(path))
        self.reader = ConfigReader(providers: [Self.environmentProvider(environment), file])
        self.configFile = path
    }

    /// The value of `setting` from the environment, else the file; `nil` if neither sets it (an empty variable
    /// sets nothing, and a toggle that is off is `nil`).
    public func value(_ setting: Setting) -> String? {
        let key = ConfigKey([setting.key])
        switch setting.kind {
        case .list(let separator):
            // The environment holds one string; the file a sequence, or one value.
            if let text = self.reader.string(forKey: key, isSecret: setting.isSecret) { return text }
            return self.reader.stringArray(forKey: key, isSecret: setting.isSecret).map {
                $0.joined(separator: String(separator))
            }
        case .toggle:
            guard let text = self.reader.string(forKey: key) else { return nil }
            // Anything but a clear "on" is off, as `SWITCHBOARD_ECHO=1` has always meant.
            return Setting.toggle(text) == true ? "1" : nil
        default:
            return self.reader.string(forKey: key, isSecret: setting.isSecret)
        }
    }

    /// The environment, asked by each setting's variable (`SWITCHBOARD_TRUSTED_PROXIES` for `trusted-proxy`) rather
    /// than swift-configuration's derived name, so the variables stay what they have been.
    private static func environmentProvider(_ environment: [String: String]) -> KeyMappingProvider<
        EnvironmentVariablesProvider
    > {
        let set = environment.filter { !$0.value.isEmpty }
        // No separator splits: lists are joined strings here and split by the setting's own separator.
        return EnvironmentVariablesProvider(environmentVariables: set, arraySeparator: "\u{0}").mapKeys { key in
            AbsoluteConfigKey([Settings.named(key.components.joined(separator: "."))?.variable ?? "-"])
        }
    }
}
