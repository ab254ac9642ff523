import Configuration
import SystemPackage

/// Where a setting's value came from: it names the setting in errors as its source spells it.
public enum SettingSource: Sendable, Equatable {
    /// A command-line flag (`--max-rooms`).
    case flag
    /// An environment variable (`SWITCHBOARD_MAX_ROOMS`).
    case environment
    /// The config file (`max-rooms:`).
    case file
}

/// The node's settings as its configuration reads them: the flags over the environment over the YAML config file,
/// each layer a swift-configuration provider (an `InMemoryProvider` of the parsed flags, an
/// `EnvironmentVariablesProvider` asked by each setting's variable, a `FileProvider<YAMLSnapshot>`).
///
/// Values come back as the environment spells them (a list's elements, a toggle as `true`/`false`), with the layer
/// they came from, so each is parsed and checked in one place (``SettingsParser``) whichever layer set it.
public struct SettingsReader: Sendable {
    /// The layers, highest first; `holdsLists`: every value is a list of strings (the in-memory layers).
    private let layers: [(source: SettingSource, reader: ConfigReader, holdsLists: Bool)]
    /// The config file the lowest layer came from; `nil` without one.
    public let configFile: String?

    /// The flags (``FlagParser``'s output: a flag's values by key) over `environment` over the YAML file at
    /// `configFile`. Check the file first (``ConfigFile/problems(atPath:checkingFiles:)``): this throws on a file
    /// it cannot read or parse, without saying where.
    public init(flags: [String: [String]] = [:], environment: [String: String], configFile: String? = nil) async throws
    {
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, given) in flags {
            let secret = NodeConfiguration.setting(named: key)?.isSecret ?? false
            values[AbsoluteConfigKey([key])] = ConfigValue(.stringArray(given), isSecret: secret)
        }
        var layers: [(SettingSource, ConfigReader, Bool)] = [
            (.flag, ConfigReader(provider: InMemoryProvider(name: "flags", values: values)), true),
            (.environment, ConfigReader(provider: Self.environmentProvider(environment)), false),
        ]
        if let configFile {
            let file = try await FileProvider<YAMLSnapshot>(filePath: FilePath(configFile))
            layers.append((.file, ConfigReader(provider: file), false))
        }
        self.layers = layers
        self.configFile = configFile
    }

    /// A config file's values alone (each setting's elements, by key), as `check-config` read them.
    init(fileValues: [String: [String]]) {
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for (key, given) in fileValues {
            values[AbsoluteConfigKey([key])] = ConfigValue(.stringArray(given), isSecret: true)
        }
        self.layers = [(.file, ConfigReader(provider: InMemoryProvider(name: "file", values: values)), true)]
        self.configFile = nil
    }

    /// The value of `setting` from the highest layer that sets it, each element of a list apart; `nil` if none
    /// does (an empty variable sets nothing).
    public func value(_ setting: Setting) -> (values: [String], source: SettingSource)? {
        let key = ConfigKey([setting.key])
        for (source, reader, holdsLists) in self.layers {
            if holdsLists, let values = reader.stringArray(forKey: key, isSecret: setting.isSecret) {
                // A repeated flag, each of whose values may be a list too (`--redis a,b`), as in the environment.
                guard case .list(let separator) = setting.kind else { return (values, source) }
                let elements = values.flatMap { $0.split(separator: separator).map { $0.trimmingSpaces() } }
                return (elements.filter { !$0.isEmpty }, source)
            }
            if !holdsLists, let values = Self.values(of: setting, key: key, source: source, in: reader) {
                return (values, source)
            }
        }
        return nil
    }

    private static func values(
        of setting: Setting, key: ConfigKey, source: SettingSource, in reader: ConfigReader
    ) -> [String]? {
        switch setting.kind {
        case .list(let separator):
            // The environment holds one string; the file a sequence, or one value.
            if let text = reader.string(forKey: key, isSecret: setting.isSecret) {
                let elements = text.split(separator: separator).map { $0.trimmingSpaces() }.filter { !$0.isEmpty }
                return elements.isEmpty ? nil : elements
            }
            return reader.stringArray(forKey: key, isSecret: setting.isSecret)
        case .toggle where source == .environment:
            // Anything but a clear "on" is off, as `SWITCHBOARD_ECHO=1` has always meant.
            return reader.string(forKey: key).map { [Setting.toggle($0) == true ? "true" : "false"] }
        default:
            return reader.string(forKey: key, isSecret: setting.isSecret).map { [$0] }
        }
    }

    /// The environment, asked by each setting's variable (`SWITCHBOARD_TRUSTED_PROXIES` for `trusted-proxy`) rather
    /// than swift-configuration's derived name, so the variables stay what they have been.
    private static func environmentProvider(_ environment: [String: String]) -> KeyMappingProvider<
        EnvironmentVariablesProvider
    > {
        let set = environment.filter { !$0.value.isEmpty }
        // No separator splits: lists are strings here, split by the setting's own separator.
        return EnvironmentVariablesProvider(environmentVariables: set, arraySeparator: "\u{0}").mapKeys { key in
            AbsoluteConfigKey([NodeConfiguration.setting(named: key.components.joined(separator: "."))?.variable ?? "-"]
            )
        }
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(self.drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}

/// Reads settings as typed values, checking each by its setting's rules and collecting every problem, named as the
/// layer that set the value spells the setting (`--port`, `SWITCHBOARD_PORT`, `port` in the file).
public struct SettingsParser: Sendable {
    public let reader: SettingsReader
    /// What is wrong, one sentence each, in the order read.
    public private(set) var problems: [String] = []

    public init(_ reader: SettingsReader) {
        self.reader = reader
    }

    /// Records a problem of a setting (or of several together).
    public mutating func report(_ problem: String) {
        self.problems.append(problem)
    }

    /// The setting's values, each checked; its default (if any) when no layer sets it; `nil` if neither, or a value
    /// is bad (reported).
    mutating func checked(_ setting: Setting) -> [String]? {
        guard let (values, source) = self.reader.value(setting) else {
            return setting.defaultValue.map { [$0] }
        }
        if case .list = setting.kind {
        } else if values.count != 1 {
            self.problems.append("\(Self.name(setting, source)) is given \(values.count) times; it takes one value")
            return nil
        }
        var good = true
        for value in values {
            guard let problem = setting.problem(with: value) else { continue }
            self.problems.append("\(Self.name(setting, source))\(problem.hasPrefix("must") ? " " : ": ")\(problem)")
            good = false
        }
        return good ? values : nil
    }

    /// The setting as `source` spells it.
    static func name(_ setting: Setting, _ source: SettingSource) -> String {
        switch source {
        case .flag: setting.flag
        case .environment: setting.variable
        case .file: setting.key
        }
    }

    /// Where a setting that was set came from, if any layer set it.
    public func source(of setting: Setting) -> SettingSource? { self.reader.value(setting)?.source }

    // MARK: Typed reads

    public mutating func text(_ setting: Setting) -> String? { self.checked(setting)?.first }

    public mutating func integer(_ setting: Setting) -> Int? { self.checked(setting)?.first.flatMap { Int($0) } }

    public mutating func number(_ setting: Setting) -> Double? { self.checked(setting)?.first.flatMap { Double($0) } }

    /// A toggle: off unless set on.
    public mutating func toggle(_ setting: Setting) -> Bool {
        self.checked(setting)?.first.flatMap(Setting.toggle) ?? false
    }

    public mutating func list(_ setting: Setting) -> [String] { self.checked(setting) ?? [] }

    /// Each element parsed; one that cannot be is reported with `problem` (which the setting's check should have
    /// caught already).
    public mutating func list<Element>(_ setting: Setting, _ parse: (String) -> Element?) -> [Element] {
        self.list(setting).compactMap { text in
            guard let value = parse(text) else {
                self.problems.append(
                    "\(setting.key): \(setting.isSecret ? "a value" : text.debugDescription) is not valid")
                return nil
            }
            return value
        }
    }
}
