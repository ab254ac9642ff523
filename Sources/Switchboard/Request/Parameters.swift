/// Values captured from a request path by a ``Router`` pattern, such as `name` in `/rooms/:name`.
///
/// Values are percent-decoded. A later capture with the same name replaces an earlier one.
public struct Parameters: Sendable, Hashable, Sequence {
    private var storage: [(name: String, value: String)] = []

    /// Creates an empty set of parameters.
    public init() {}

    /// The value captured under `name`, if any.
    public subscript(_ name: String) -> String? {
        self.storage.last(where: { $0.name == name })?.value
    }

    /// Adds or replaces the value captured under `name`.
    public mutating func set(_ name: String, to value: String) {
        self.storage.removeAll { $0.name == name }
        self.storage.append((name, value))
    }

    /// Whether no parameter was captured.
    public var isEmpty: Bool { self.storage.isEmpty }

    public func makeIterator() -> some IteratorProtocol<(name: String, value: String)> {
        self.storage.makeIterator()
    }

    public static func == (lhs: Parameters, rhs: Parameters) -> Bool {
        lhs.storage.elementsEqual(rhs.storage) { $0 == $1 }
    }

    public func hash(into hasher: inout Hasher) {
        for (name, value) in self.storage {
            hasher.combine(name)
            hasher.combine(value)
        }
    }
}
