/// Validates UTF-8 incrementally, fragment by fragment, so an invalid text message fails at its first bad byte
/// (RFC 6455 §8.1) instead of once the whole message has arrived.
///
/// A DFA after Björn Höhrmann's "Flexible and Economical UTF-8 Decoder": rejects overlong forms, surrogates and
/// code points above U+10FFFF, and carries a partial code point from one fragment to the next.
struct UTF8Validator: Sendable {
    static let accept: UInt8 = 0
    static let reject: UInt8 = 12

    private(set) var state: UInt8 = Self.accept

    /// Whether the bytes so far end on a code point boundary (a message may end here).
    var isComplete: Bool { self.state == Self.accept }

    /// Feeds `bytes`; returns `false` as soon as they cannot be (the start of) valid UTF-8.
    mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var state = self.state
        for byte in bytes {
            // ASCII in the accept state is by far the common case.
            if byte < 0x80 && state == Self.accept { continue }
            state = Self.transitions[Int(state) + Int(Self.classes[Int(byte)])]
            if state == Self.reject {
                self.state = state
                return false
            }
        }
        self.state = state
        return true
    }

    /// The character class of each byte.
    private static let classes: [UInt8] = {
        var table = [UInt8](repeating: 0, count: 256)
        for b in 0x80...0x8F { table[b] = 1 }
        for b in 0x90...0x9F { table[b] = 9 }
        for b in 0xA0...0xBF { table[b] = 7 }
        for b in 0xC0...0xC1 { table[b] = 8 }
        for b in 0xC2...0xDF { table[b] = 2 }
        table[0xE0] = 10
        for b in 0xE1...0xEC { table[b] = 3 }
        table[0xED] = 4
        for b in 0xEE...0xEF { table[b] = 3 }
        table[0xF0] = 11
        for b in 0xF1...0xF3 { table[b] = 6 }
        table[0xF4] = 5
        for b in 0xF5...0xFF { table[b] = 8 }
        return table
    }()

    /// State × class → state; states are multiples of 12.
    private static let transitions: [UInt8] = [
        0, 12, 24, 36, 60, 96, 84, 12, 12, 12, 48, 72,
        12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
        12, 0, 12, 12, 12, 12, 12, 0, 12, 0, 12, 12,
        12, 24, 12, 12, 12, 12, 12, 24, 12, 24, 12, 12,
        12, 12, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12,
        12, 24, 12, 12, 12, 12, 12, 12, 12, 24, 12, 12,
        12, 12, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,
        12, 36, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,
        12, 36, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
    ]
}
