import Yams

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A YAML config file: one `key: value` per setting, keys as the flags without their dashes (`max-rooms: 500`).
///
/// ``problems(in:checkingFiles:)`` is what `switchboard check-config` prints and what the server checks before it
/// starts: every problem with its line, so an operator fixes them all in one go. Each value is checked by its
/// setting's rules, and the rules between settings are the node configuration's own (``NodeConfiguration``), run on
/// the file's values. The values themselves are read by ``SettingsReader`` (swift-configuration) once the file has no
/// problem.
public enum ConfigFile {
    /// The largest config file read: far above any real one, and a bound on what a typo (a log file) costs.
    public static let maxBytes = 1 << 20

    /// What is wrong with the file at `path`, each with its line; empty if nothing.
    public static func problems(atPath path: String, checkingFiles: Bool = true) -> [ConfigProblem] {
        switch self.read(path) {
        case .success(let text): return self.problems(in: text, checkingFiles: checkingFiles)
        case .failure(let problem): return [problem]
        }
    }

    /// What is wrong with a config file's text, in the order of its lines; empty if nothing. With `checkingFiles`,
    /// the files it names (certificates, keys) must be readable.
    public static func problems(in text: String, checkingFiles: Bool = true) -> [ConfigProblem] {
        guard text.utf8.count <= self.maxBytes else {
            return [ConfigProblem(line: nil, "the file has more than \(self.maxBytes) bytes; a config file has less")]
        }
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch YamlError.duplicatedKeysInMapping(let duplicates, _) {
            return self.duplicates(duplicates, in: text)
        } catch let error as YamlError {
            return [ConfigProblem(error)]
        } catch {
            return [ConfigProblem(line: nil, "not YAML: \(error)")]
        }
        guard let root else { return [] }  // An empty file (or only comments) sets nothing.
        guard let mapping = root.mapping else {
            return [ConfigProblem(line: root.mark?.line, "the file must be settings, one `key: value` per line")]
        }
        var checker = Checker(checkingFiles: checkingFiles)
        for (keyNode, valueNode) in mapping {
            checker.check(keyNode, valueNode)
        }
        checker.checkTogether()
        return checker.problems.sorted { ($0.line ?? 0) < ($1.line ?? 0) }
    }

    /// A problem per setting written more than once, at its second line (Yams names the keys, not their lines).
    static func duplicates(_ keys: [String], in text: String) -> [ConfigProblem] {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        return keys.sorted().map { key in
            let found = lines.indices.filter { lines[$0].hasPrefix("\(key):") || lines[$0].hasPrefix("\"\(key)\":") }
            guard found.count >= 2 else {
                return ConfigProblem(line: nil, "\(key) is set twice; each setting appears once")
            }
            return ConfigProblem(line: found[1] + 1, "\(key) is set twice (first on line \(found[0] + 1))")
        }
    }

    /// The file's text, read with the size cap.
    static func read(_ path: String) -> Result<String, ConfigProblem> {
        guard let file = fopen(path, "rb") else {
            return .failure(ConfigProblem(line: nil, "cannot read \(path): \(String(cString: strerror(errno)))"))
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count == 0 { break }
            bytes += buffer[..<count]
            if bytes.count > self.maxBytes {
                return .failure(
                    ConfigProblem(line: nil, "the file has more than \(self.maxBytes) bytes; a config file has less"))
            }
        }
        if ferror(file) != 0 {
            return .failure(ConfigProblem(line: nil, "cannot read \(path): \(String(cString: strerror(errno)))"))
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            return .failure(ConfigProblem(line: nil, "the file is not UTF-8 text"))
        }
        return .success(text)
    }
}

/// One problem in a config file: its line (1 for the first) when known, and what is wrong.
public struct ConfigProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// The line, from 1.
    public let line: Int?
    /// What is wrong, never with a secret's value.
    public let message: String

    init(line: Int?, _ message: String) {
        self.line = line
        self.message = message
    }

    init(_ error: YamlError) {
        switch error {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _),
            .composer(_, let problem, let mark, _):
            self.init(line: mark.line, "not YAML: \(problem) (column \(mark.column))")
        case .duplicatedKeysInMapping(let duplicates, let context):
            self.init(
                line: context.mark.line,
                "set twice: \(duplicates.sorted().joined(separator: ", ")) (each setting appears once)")
        case .reader(let problem, _, _, _):
            self.init(line: nil, "not YAML: \(problem)")
        default:
            self.init(line: nil, "not YAML: \(error)")
        }
    }

    /// `line 3: port must be 0 to 65535, not "70000"`.
    public var description: String {
        guard let line = self.line else { return self.message }
        return "line \(line): \(self.message)"
    }
}

/// Checks one file's settings, collecting every problem.
private struct Checker {
    let checkingFiles: Bool
    var problems: [ConfigProblem] = []
    /// The settings seen, with their line and values.
    var seen: [String: (line: Int?, values: [String])] = [:]
    /// The settings with a value that failed its own checks.
    var badKeys: Set<String> = []

    init(checkingFiles: Bool) {
        self.checkingFiles = checkingFiles
    }

    mutating func check(_ keyNode: Yams.Node, _ valueNode: Yams.Node) {
        let line = keyNode.mark?.line
        guard let key = keyNode.scalar?.string else {
            self.problems.append(ConfigProblem(line: line, "a key must be a setting's name, such as port"))
            return
        }
        guard let setting = NodeConfiguration.setting(named: key), key != NodeConfiguration.configFile.key else {
            self.problems.append(ConfigProblem(line: line, "unknown setting \(key.debugDescription)\(hint(key))"))
            return
        }
        let values: [(String, Int?)]
        switch (setting.kind, valueNode) {
        case (_, .scalar(let scalar))
        where scalar.style == .plain && ["", "~", "null", "Null", "NULL"].contains(scalar.string):
            self.problems.append(ConfigProblem(line: line, "\(key) has no value: give one, or remove the line"))
            return
        case (_, .scalar(let scalar)):
            values = [(scalar.string, valueNode.mark?.line ?? line)]
        case (.list, .sequence(let sequence)):
            var elements: [(String, Int?)] = []
            for element in sequence {
                guard let scalar = element.scalar else {
                    self.problems.append(
                        ConfigProblem(line: element.mark?.line ?? line, "\(key): each element must be one value"))
                    return
                }
                elements.append((scalar.string, element.mark?.line ?? line))
            }
            values = elements
        default:
            self.problems.append(ConfigProblem(line: line, "\(key) must be \(setting.kind.expected)"))
            return
        }
        for (value, valueLine) in values {
            if let problem = setting.problem(with: value) {
                let separator = problem.hasPrefix("must") ? " " : ": "
                self.problems.append(ConfigProblem(line: valueLine, "\(key)\(separator)\(problem)"))
                self.badKeys.insert(key)
            } else if case .file = setting.kind, self.checkingFiles, access(value, R_OK) != 0 {
                let reason = String(cString: strerror(errno))
                self.problems.append(ConfigProblem(line: valueLine, "\(key): cannot read \(value): \(reason)"))
            }
        }
        self.seen[key] = (line, values.map(\.0))
    }

    /// Rules between settings of this file: the node configuration's own, run on the file's values; each problem at
    /// the line of the setting it names first. Those that need the environment too (a private room needs a token
    /// key, which often comes from the environment) are checked when the server starts.
    mutating func checkTogether() {
        // Only the values that passed their own checks: theirs are reported already, each at its line.
        let good = self.seen.filter { key, _ in !self.badKeys.contains(key) }
        var parser = SettingsParser(SettingsReader(fileValues: good.mapValues(\.values)))
        _ = NodeConfiguration(&parser)
        for problem in parser.problems {
            let key = problem.prefix { $0 != " " && $0 != ":" }
            self.problems.append(ConfigProblem(line: self.seen[String(key)]?.line, problem))
        }
    }

    /// ", did you mean port?" for a near miss, a flag's spelling or an environment variable's.
    private func hint(_ key: String) -> String {
        if key.hasPrefix("-"), let setting = NodeConfiguration.setting(named: String(key.drop { $0 == "-" })) {
            return "; write it without dashes: \(setting.key)"
        }
        if let setting = NodeConfiguration.setting(variable: key) {
            return "; that is the environment variable, the file's key is \(setting.key)"
        }
        let lowered = key.lowercased().replacing("_", with: "-")
        // Lengths more than 2 apart are more than 2 edits apart: no need to count them.
        let nearest = NodeConfiguration.settings.lazy.filter { abs($0.key.utf8.count - lowered.utf8.count) <= 2 }
            .map { ($0.key, editDistance(lowered, $0.key)) }.min { $0.1 < $1.1 }
        if let nearest, nearest.1 <= 2 { return "; did you mean \(nearest.0)?" }
        return " (switchboard serve --help lists them, without the dashes)"
    }
}

/// The Levenshtein distance, for "did you mean": keys are short, longer ones are cut first, and two rows are reused
/// (a file of many unknown keys costs a check per key against every setting).
func editDistance(_ first: String, _ second: String) -> Int {
    let a = Array(first.utf8.prefix(64))
    let b = Array(second.utf8.prefix(64))
    guard !a.isEmpty, !b.isEmpty else { return max(a.count, b.count) }
    var previous = Array(0...b.count)
    var current = previous
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
