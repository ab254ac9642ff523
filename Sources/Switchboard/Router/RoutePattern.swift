/// A parsed route pattern: literal segments, `:name` captures and a trailing `*`.
struct RoutePattern: Sendable, Hashable {
    enum Segment: Sendable, Hashable {
        case literal(String)
        case capture(String)
        case rest
    }

    let segments: [Segment]

    init(_ pattern: String) {
        let parts = pattern.split(separator: "/", omittingEmptySubsequences: true)
        self.segments = parts.enumerated().map { index, part in
            if part == "*" {
                precondition(index == parts.count - 1, "Router: `*` must be the last segment of \(pattern)")
                return .rest
            }
            if part.hasPrefix(":") && part.count > 1 { return .capture(String(part.dropFirst())) }
            return .literal(String(part))
        }
    }

    /// The captures if `path` matches, else `nil`.
    func match(_ path: String) -> Parameters? {
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        var captures = Parameters()
        for (index, segment) in self.segments.enumerated() {
            switch segment {
            case .rest:
                captures.set("*", to: parts[index...].map { percentDecoded($0) }.joined(separator: "/"))
                return captures
            case .literal(let literal):
                guard index < parts.count, parts[index] == literal else { return nil }
            case .capture(let name):
                guard index < parts.count else { return nil }
                captures.set(name, to: percentDecoded(parts[index]))
            }
        }
        return parts.count == self.segments.count ? captures : nil
    }
}

/// `text` with `%XX` escapes decoded, or unchanged if it has a malformed escape or is not UTF-8 after decoding.
func percentDecoded(_ text: Substring) -> String {
    guard text.contains("%") else { return String(text) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(text.utf8.count)
    var iterator = text.utf8.makeIterator()
    while let byte = iterator.next() {
        guard byte == UInt8(ascii: "%") else {
            bytes.append(byte)
            continue
        }
        guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else {
            return String(text)
        }
        bytes.append(high << 4 | low)
    }
    return String(validating: bytes, as: UTF8.self) ?? String(text)
}

private func hexValue(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
}
