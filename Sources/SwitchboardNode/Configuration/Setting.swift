/// One setting of the node, defined once: its command-line flag, its environment variable, its config-file key,
/// what its values may be, its default and its help. `--help`, the environment, the config file and `check-config`
/// all go by this one definition.
///
/// The three spellings name the same thing: the flag `--max-rooms`, the variable `SWITCHBOARD_MAX_ROOMS` and the
/// key `max-rooms`. A flag wins over the variable, the variable over the file.
public struct Setting: Sendable {
    /// What values a setting takes, and how a config file writes them.
    public enum Kind: Sendable {
        /// Any text.
        case text
        /// One of a few words, compared without case.
        case choice([String])
        /// A whole number within a range; `unit` is said after the range in errors (" seconds").
        case integer(ClosedRange<Int>, unit: String)
        /// A number above 0, at most the bound.
        case number(atMost: Double)
        /// On or off: a flag without a value; `true`/`false` in a file, `1` in the environment.
        case toggle
        /// Several values: a YAML sequence in a file, one string joined by `separator` in the environment.
        case list(separator: Character)
        /// The path of a file the server reads at start: it must exist and be readable.
        case file
    }

    /// The config-file key, which is also the flag without its dashes: `max-rooms`.
    public let key: String
    /// The environment variable: `SWITCHBOARD_MAX_ROOMS`.
    public let variable: String
    /// What values it takes.
    public let kind: Kind
    /// A value that must never be printed (a secret, a key, a URL with a password).
    public let isSecret: Bool
    /// The value when none is given, as the environment would spell it; `nil` when there is none (or it is
    /// computed, as ``defaultNote`` says).
    public let defaultValue: String?
    /// What the default is when it is not one value: "the open-file limit less 64".
    public let defaultNote: String?
    /// What it does, for `--help`: one or two sentences.
    public let help: String
    /// Checks one value (one element of a list); `nil` if it is good, else what is wrong, without the value when
    /// ``isSecret``.
    let check: @Sendable (String) -> String?

    /// The flag: `--max-rooms`.
    public var flag: String { "--\(self.key)" }

    init(
        _ key: String, _ kind: Kind, variable: String? = nil, secret: Bool = false, default defaultValue: String? = nil,
        defaultNote: String? = nil, help: String, check: @escaping @Sendable (String) -> String? = { _ in nil }
    ) {
        self.key = key
        self.kind = kind
        self.variable =
            variable ?? "SWITCHBOARD_" + String(key.uppercased().map { $0 == "-" ? "_" : $0 })
        self.isSecret = secret
        self.defaultValue = defaultValue
        self.defaultNote = defaultNote
        self.help = help
        self.check = check
    }

    /// What is wrong with `value` as this setting's value (one list element for lists); `nil` if nothing.
    public func problem(with value: String) -> String? {
        switch self.kind {
        case .text, .file, .list:
            return self.check(value)
        case .choice(let words):
            guard words.contains(where: { $0.lowercased() == value.lowercased() }) else {
                return "must be one of \(words.joined(separator: ", ")), not \(self.shown(value))"
            }
            return self.check(value)
        case .integer(let range, let unit):
            guard let number = Int(value), range.contains(number) else {
                return "must be \(range.lowerBound) to \(range.upperBound)\(unit), not \(self.shown(value))"
            }
            return nil
        case .number(let bound):
            guard let number = Double(value), number > 0, number <= bound else {
                return "must be a number above 0 and at most \(Int(bound)), not \(self.shown(value))"
            }
            return nil
        case .toggle:
            return Self.toggle(value) == nil ? "must be true or false, not \(self.shown(value))" : nil
        }
    }

    /// A toggle's value: `true`, `yes`, `on` and `1` are on; `false`, `no`, `off` and `0` off; anything else `nil`.
    public static func toggle(_ value: String) -> Bool? {
        switch value.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: return nil
        }
    }

    /// The value as errors show it: quoted, or hidden for a secret.
    func shown(_ value: String) -> String { self.isSecret ? "(hidden)" : value.debugDescription }
}

extension Setting.Kind {
    /// How a config file writes such a value, for errors: "a number", "a list".
    var expected: String {
        switch self {
        case .text, .choice, .file: return "a string"
        case .integer: return "a whole number"
        case .number: return "a number"
        case .toggle: return "true or false"
        case .list: return "a list (or one value)"
        }
    }
}
