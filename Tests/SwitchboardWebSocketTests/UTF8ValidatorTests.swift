import Testing

@testable import SwitchboardWebSocket

@Suite("UTF-8 validator")
struct UTF8ValidatorTests {
    private func validate(_ chunks: [[UInt8]]) -> (valid: Bool, complete: Bool) {
        var validator = UTF8Validator()
        for chunk in chunks {
            let ok = chunk.withUnsafeBytes { validator.validate($0) }
            if !ok { return (false, false) }
        }
        return (true, validator.isComplete)
    }

    @Test("Valid text is valid across every fragment boundary")
    func validAcrossBoundaries() {
        let bytes = Array("κόσμε ✓ 𝄞 ascii".utf8)
        for split in 0...bytes.count {
            let result = self.validate([Array(bytes[..<split]), Array(bytes[split...])])
            #expect(result.valid && result.complete, "split at \(split)")
        }
    }

    @Test("A code point cut at the end is incomplete, not invalid")
    func truncated() {
        let result = self.validate([[0xF0, 0x9D, 0x84]])
        #expect(result.valid && !result.complete)
    }

    @Test(
        "Invalid sequences fail",
        arguments: [
            [0xC0, 0xAF],  // overlong
            [0xE0, 0x80, 0xAF],  // overlong
            [0xED, 0xA0, 0x80],  // surrogate
            [0xF4, 0x90, 0x80, 0x80],  // above U+10FFFF
            [0xFF],
            [0x80],  // lone continuation
            [0xCE, 0x41],  // missing continuation
        ] as [[UInt8]]
    )
    func invalid(bytes: [UInt8]) {
        #expect(!self.validate([bytes]).valid)
    }

    @Test("Fails fast: at the first invalid fragment, before the rest arrives")
    func failsFast() {
        var validator = UTF8Validator()
        let first: [UInt8] = Array("κόσμε".utf8)
        #expect(first.withUnsafeBytes { validator.validate($0) })
        let bad: [UInt8] = [0xED, 0xA0, 0x80]
        #expect(!bad.withUnsafeBytes { validator.validate($0) })
    }
}
