import HTTPTypes
import SwitchboardJSON

/// The known members of one object of a JSON text, taken by name, with errors that name the field as
/// `JSONDecoder`'s did: `channels[1] has the wrong type`, `commands[0].publish.data is missing`. Other members are
/// ignored; a known one given twice is refused.
struct JSONFields {
    private let text: JSONText
    private let path: String
    private var members: [String: Range<Int>] = [:]

    init(_ text: JSONText, at value: Range<Int>, path: String, known: Set<String>) throws(ApiError) {
        self.text = text
        self.path = path
        guard text.kind(of: value) == .object else { throw Self.wrongType(path.isEmpty ? "the body" : path) }
        for (key, member) in text.members(of: value) where known.contains(key) {
            guard self.members.updateValue(member, forKey: key) == nil else {
                throw ApiError(.badRequest, "invalid_json", "\(self.name(key)) is given twice")
            }
        }
    }

    /// The value of `key`, which must be there (and not `null`).
    func required(_ key: String) throws(ApiError) -> Range<Int> {
        guard let value = self.members[key] else {
            throw ApiError(.badRequest, "invalid_json", "\(self.name(key)) is missing")
        }
        return value
    }

    /// A string member, or `nil` when absent (`null` is the wrong type: the schema says absent or a string).
    func string(_ key: String) throws(ApiError) -> String? {
        guard let value = self.members[key] else { return nil }
        guard self.text.kind(of: value) == .string else { throw Self.wrongType(self.name(key)) }
        return self.text.string(at: value)
    }

    /// An array-of-strings member, or `nil` when absent.
    func strings(_ key: String) throws(ApiError) -> [String]? {
        guard let value = self.members[key] else { return nil }
        guard self.text.kind(of: value) == .array else { throw Self.wrongType(self.name(key)) }
        var strings: [String] = []
        for (index, element) in self.text.elements(of: value).enumerated() {
            guard self.text.kind(of: element) == .string else { throw Self.wrongType("\(self.name(key))[\(index)]") }
            strings.append(self.text.string(at: element))
        }
        return strings
    }

    /// An array member's elements, or `nil` when absent.
    func array(_ key: String) throws(ApiError) -> [Range<Int>]? {
        guard let value = self.members[key] else { return nil }
        guard self.text.kind(of: value) == .array else { throw Self.wrongType(self.name(key)) }
        return self.text.elements(of: value)
    }

    /// `key` as errors name it.
    func name(_ key: String) -> String { self.path.isEmpty ? key : "\(self.path).\(key)" }

    static func wrongType(_ name: String) -> ApiError {
        ApiError(.badRequest, "invalid_json", "\(name) has the wrong type")
    }
}
