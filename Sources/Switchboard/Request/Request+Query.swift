extension Request {
    /// The query's `name=value` pairs in order, percent-decoded, `+` read as a space (HTML forms' encoding); a name
    /// without `=` has an empty value. Empty when there is no query.
    public var queryItems: [(name: String, value: String)] {
        guard let query = self.query, !query.isEmpty else { return [] }
        return query.split(separator: "&", omittingEmptySubsequences: true).map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let decode = { (text: Substring) in percentDecoded(Substring(text.replacing("+", with: " "))) }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }

    /// The value of the first query item named `name`, or `nil` if there is none.
    public func queryValue(_ name: String) -> String? {
        self.queryItems.first { $0.name == name }?.value
    }
}
