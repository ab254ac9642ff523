import ArgumentParser
import SwitchboardConfig

/// A whole-number setting: its flag, its environment variable, the range it must fall in and its default. The flag
/// wins over the variable; a bad flag is a usage error, a bad variable one line on stderr and exit code 64.
struct IntegerSetting {
    let flag: String
    let variable: String
    let range: ClosedRange<Int>
    let defaultValue: Int
    /// Said after the range in errors (" seconds", " MiB").
    let unit: String

    /// The catalog's integer setting with this key (its flag, variable, range and unit), with its default.
    init(_ key: String, defaultValue: Int) {
        guard let setting = Settings.named(key), case .integer(let range, let unit) = setting.kind else {
            preconditionFailure("\(key) is not an integer setting of the catalog")
        }
        self.flag = setting.flag
        self.variable = setting.variable
        self.range = range
        self.unit = unit
        self.defaultValue = defaultValue
    }

    /// The value from the flag, else the environment, else the default (both checked before use).
    func resolve(_ flagValue: Int?) -> Int {
        flagValue ?? configured(self.variable).flatMap { Int($0) } ?? self.defaultValue
    }

    func validate(_ flagValue: Int?) throws {
        if let value = flagValue, !self.range.contains(value) {
            throw ValidationError("\(self.flag) must be \(self.rangeText), not \(value)")
        }
    }

    func checkEnvironment(_ flagValue: Int?) {
        guard flagValue == nil, let text = configured(self.variable) else { return }
        if !(Int(text).map { self.range.contains($0) } ?? false) {
            exitWithUsageError("\(self.variable) must be \(self.rangeText), not \(text.debugDescription)")
        }
    }

    private var rangeText: String { "\(self.range.lowerBound) to \(self.range.upperBound)\(self.unit)" }
}
