/// The command line of `switchboard serve` (and `hijack-demo`), parsed by the settings it may set: `--key value`,
/// `--key=value`, a toggle as `--key` alone, a list's flag repeated. What it finds becomes the top layer of the
/// node's settings (``SettingsReader``).
public enum FlagParser {
    /// What the command line says.
    public struct Parsed: Sendable, Equatable {
        /// Each flag's values, by key, in order.
        public var values: [String: [String]] = [:]
        /// `--help` (or `-h`) was given.
        public var wantsHelp = false
    }

    /// A command line that is not made of the settings' flags.
    public struct Problem: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// Parses `arguments` (without the program and subcommand names) as flags of `settings`.
    ///
    /// - Throws: ``Problem`` for an unknown flag (with the nearest one), a missing value or a stray argument.
    public static func parse(_ arguments: [String], settings: [Setting]) throws(Problem) -> Parsed {
        let byKey = Dictionary(uniqueKeysWithValues: settings.map { ($0.key, $0) })
        var parsed = Parsed()
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            index += 1
            if argument == "--help" || argument == "-h" {
                parsed.wantsHelp = true
                continue
            }
            guard argument.hasPrefix("--"), argument.count > 2 else {
                throw Problem(description: "unexpected argument \(argument.debugDescription): settings are --key value")
            }
            let body = argument.dropFirst(2)
            let key = String(body.prefix { $0 != "=" })
            let inline = body.firstIndex(of: "=").map { String(body[body.index(after: $0)...]) }
            guard let setting = byKey[key] else {
                throw Problem(description: "unknown flag --\(key)\(Self.hint(key, among: settings))")
            }
            if case .toggle = setting.kind {
                parsed.values[key, default: []].append(inline ?? "true")
                continue
            }
            if let inline {
                parsed.values[key, default: []].append(inline)
            } else if index < arguments.endIndex, !arguments[index].hasPrefix("--") {
                parsed.values[key, default: []].append(arguments[index])
                index += 1
            } else {
                throw Problem(description: "\(setting.flag) needs a value")
            }
        }
        return parsed
    }

    /// "; did you mean --port?" for a near miss.
    static func hint(_ key: String, among settings: [Setting]) -> String {
        let nearest = settings.lazy.filter { abs($0.key.utf8.count - key.utf8.count) <= 2 }
            .map { ($0.flag, editDistance(key, $0.key)) }.min { $0.1 < $1.1 }
        if let nearest, nearest.1 <= 2 { return "; did you mean \(nearest.0)?" }
        return " (--help lists them)"
    }
}
