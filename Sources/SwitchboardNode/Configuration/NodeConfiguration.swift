/// Everything a node is configured with, one part per module, each read from the same layers (flags over the
/// environment over the YAML file) and checked in one place: each setting's rule, default and help are written once,
/// in its part, and `--help`, `check-config`, the environment and the file all come from them.
///
/// ```swift
/// let reader = try await SettingsReader(flags: parsed.values, environment: ProcessInfo.processInfo.environment)
/// let configuration = try NodeConfiguration(reader: reader)
/// try await Node(configuration: configuration, logger: logger).run()
/// ```
public struct NodeConfiguration: Sendable {
    public var server = ServerSettings()
    public var log = LogSettings()
    public var redis = RedisSettings()
    public var chat = ChatSettings()
    public var api = ApiSettings()
    public var identity = IdentitySettings()
    public var metrics = MetricsSettings()
    public var webhooks = WebhookSettings()

    /// The defaults: the chat on 127.0.0.1:8080 with the embedded broker.
    public init() {}

    /// Reads every part from `reader`.
    ///
    /// - Throws: ``ConfigurationError`` with every problem found, each a sentence naming the setting as its layer
    ///   spells it (`--port`, `SWITCHBOARD_PORT`, `port`).
    public init(reader: SettingsReader) throws(ConfigurationError) {
        var parser = SettingsParser(reader)
        self.init(&parser)
        guard parser.problems.isEmpty else { throw ConfigurationError(problems: parser.problems) }
    }

    /// Reads every part, collecting what is wrong in `parser`.
    init(_ parser: inout SettingsParser) {
        self.server = ServerSettings(&parser)
        self.log = LogSettings(&parser)
        self.redis = RedisSettings(&parser)
        self.chat = ChatSettings(&parser)
        self.api = ApiSettings(&parser)
        self.identity = IdentitySettings(&parser)
        self.metrics = MetricsSettings(&parser)
        self.webhooks = WebhookSettings(&parser)
    }

    /// The config file's own setting: read from the flags and the environment, never from a file.
    public static let configFile = Setting(
        "config", .file, defaultNote: "none: flags and environment only",
        help: "A YAML file of settings, one `key: value` per line, keys as these flags without their dashes "
            + "(deploy/switchboard.yaml shows them all); the environment and flags override it. `switchboard "
            + "check-config FILE` checks one.")

    /// Every setting of a node, in the order of `--help`: the catalog the flags, the environment, the file and
    /// `check-config` go by.
    public static let settings: [Setting] =
        ServerSettings.settings + LogSettings.settings + RedisSettings.settings + ChatSettings.settings
        + ApiSettings.settings + IdentitySettings.settings + MetricsSettings.settings + WebhookSettings.settings

    /// The settings of a server without the chat (`hijack-demo`).
    public static let serverSettings: [Setting] = ServerSettings.settings + LogSettings.settings

    /// The setting with this key (``configFile`` included).
    public static func setting(named key: String) -> Setting? { byKey[key] }

    /// The setting with this environment variable.
    public static func setting(variable name: String) -> Setting? { byVariable[name] }

    private static let byKey = Dictionary(uniqueKeysWithValues: (settings + [configFile]).map { ($0.key, $0) })
    private static let byVariable = Dictionary(
        uniqueKeysWithValues: (settings + [configFile]).map { ($0.variable, $0) })
}

/// Settings that are wrong: each problem a sentence.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    public let problems: [String]

    public init(problems: [String]) {
        self.problems = problems
    }

    public var description: String { self.problems.joined(separator: "\n") }
}

extension NodeConfiguration {
    /// `--help`'s list of `settings`: each flag with its kind of value, its help, its variable and its default.
    public static func help(for settings: [Setting]) -> String {
        settings.map { setting in
            var line = "  \(setting.flag)\(Self.metavariable(setting.kind))\n      \(setting.help)"
            var notes = ["env \(setting.variable)"]
            if let value = setting.defaultValue {
                notes.append("default \(value)")
            } else if let note = setting.defaultNote {
                notes.append("default: \(note)")
            }
            line += " (\(notes.joined(separator: "; ")))"
            return line
        }.joined(separator: "\n")
    }

    private static func metavariable(_ kind: Setting.Kind) -> String {
        switch kind {
        case .text: " <text>"
        case .choice(let words): " <\(words.joined(separator: "|"))>"
        case .integer: " <n>"
        case .number: " <number>"
        case .toggle: ""
        case .list: " <value> (repeatable)"
        case .file: " <file>"
        }
    }
}
