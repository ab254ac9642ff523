/// A room or channel name pattern: `*` matches any run of characters (none included), everything else itself.
/// `team-*` matches `team-red` and `team-`; `*` matches every name.
public struct ChannelPattern: Sendable, Hashable, CustomStringConvertible {
    /// The pattern as written.
    public let pattern: String
    private let parts: [Substring]

    /// A pattern; at most 128 bytes.
    public init?(_ pattern: String) {
        guard !pattern.isEmpty, pattern.utf8.count <= 128 else { return nil }
        self.pattern = pattern
        self.parts = pattern.split(separator: "*", omittingEmptySubsequences: false)
    }

    public var description: String { self.pattern }

    /// Whether `name` matches: the literal parts appear in order, the first at the start and the last at the end.
    public func matches(_ name: String) -> Bool {
        guard self.parts.count > 1 else { return name == self.pattern }
        var rest = Substring(name)
        guard rest.hasPrefix(self.parts[0]) else { return false }
        rest = rest.dropFirst(self.parts[0].count)
        for part in self.parts.dropFirst().dropLast() where !part.isEmpty {
            guard let found = rest.firstRange(of: part) else { return false }
            rest = rest[found.upperBound...]
        }
        let last = self.parts[self.parts.count - 1]
        return rest.count >= last.count && rest.hasSuffix(last)
    }
}
