import Foundation
import Testing

@testable import SwitchboardJSON

@Suite("JSONText: the API's strict JSON reader")
struct JSONTextTests {
    private static func read(_ text: String) throws(JSONText.SyntaxError) -> JSONText {
        try JSONText(Array(text.utf8))
    }

    @Test(
        "RFC 8259 texts are read",
        arguments: [
            "0", "-0", "12", "-1.5e+3", "1E-2", "0.25", "true", "false", "null", #""""#, #""a\"b\\c\/d\b\f\n\r\t""#,
            #""\u00e9\uD83D\uDE00""#, "\"é😀\"", "[]", "{}", " [ 1 , [ ] , { } ] ", #"{"a":{"b":[{"c":null}]}}"#,
            "\t\r\n{\"k\" : \"v\"}\n",
        ])
    func valid(_ text: String) throws {
        let json = try Self.read(text)
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(String(decoding: json.bytes[json.root], as: UTF8.self) == trimmed)
    }

    @Test(
        "What the grammar refuses is refused",
        arguments: [
            "", " ", "01", "-", "1.", ".5", "1e", "+1", "0x1", "NaN", "Infinity", "tru", "nul", "True", "[1,]", "[,1]",
            "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "{'a':1}", "'a'", "\"abc", "\"a\u{01}b\"", "\"\\x\"", "\"\\u12\"",
            "\"\\u12G4\"", "\"\\uD800\"", "\"\\uDC00\"", "\"\\uD800\\u0041\"", "\"\\uD800x\"", "[1] [2]", "{} x",
            "[1 2]", "// c\n1", "/* c */ 1", "[", "]", "{\"a\":}", "\"\\\"",
        ])
    func invalid(_ text: String) {
        #expect(throws: JSONText.SyntaxError.self) { try Self.read(text) }
    }

    @Test("Bytes that are not well-formed UTF-8 inside strings are refused")
    func invalidUTF8() {
        let cases: [[UInt8]] = [
            [0x80], [0xC0, 0x80], [0xC1, 0xBF], [0xE0, 0x80, 0x80], [0xED, 0xA0, 0x80], [0xF0, 0x80, 0x80, 0x80],
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF], [0xC3], [0xE2, 0x82], [0xE2, 0x28, 0xA1],
        ]
        for bytes in cases {
            let text = [UInt8(ascii: "\"")] + bytes + [UInt8(ascii: "\"")]
            #expect(throws: JSONText.SyntaxError.self, "\(bytes)") { try JSONText(text) }
        }
        // The longest forms of each length are fine.
        let fine: [UInt8] = [0x22, 0xDF, 0xBF, 0xEF, 0xBF, 0xBF, 0xF4, 0x8F, 0xBF, 0xBF, 0x22]
        #expect(throws: Never.self) { try JSONText(fine) }
    }

    @Test("Nesting is limited: 64 levels read, 65 refused (no stack exhausted by a deep body)")
    func depth() throws {
        _ = try Self.read(String(repeating: "[", count: 64) + String(repeating: "]", count: 64))
        let error = #expect(throws: JSONText.SyntaxError.self) {
            try Self.read(String(repeating: "[", count: 65) + String(repeating: "]", count: 65))
        }
        #expect(error?.reason.contains("deeper") == true)
        #expect(throws: JSONText.SyntaxError.self) { try Self.read(String(repeating: "[", count: 100_000)) }
    }

    @Test("Walking: members in order with keys decoded, elements, kinds, strings, and each value's bytes as sent")
    func walk() throws {
        let json = try Self.read(#" {"a\u0062": [1, "x\"]", {"k":"}"}], "n" : -2.5e1 , "t":true,"z":null} "#)
        let members = json.members(of: json.root)
        #expect(members.map(\.key) == ["ab", "n", "t", "z"])
        #expect(members.map { json.kind(of: $0.value) } == [.array, .number, .bool, .null])
        #expect(String(decoding: json.bytes[members[1].value], as: UTF8.self) == "-2.5e1")
        let elements = json.elements(of: members[0].value)
        #expect(elements.map { String(decoding: json.bytes[$0], as: UTF8.self) } == ["1", #""x\"]""#, #"{"k":"}"}"#])
        #expect(json.string(at: elements[1]) == "x\"]")
        #expect(json.members(of: elements[2]).map(\.key) == ["k"])
    }

    @Test("Agrees with Foundation's JSONSerialization on what is JSON, and on every string's value")
    func agreesWithFoundation() throws {
        // Texts made from pieces that are valid and invalid in many combinations.
        let pieces = [
            "{", "}", "[", "]", ",", ":", "\"a\"", "\"\\u00e9\"", "\"\\ud83d\\ude00\"", "\"\\uDE00\"", "1", "-0.5e2",
            "01", "true", "nul", " ", "\"\\n\"", "\"é\"",
        ]
        var generator = SystemRandomNumberGenerator()
        var agreed = 0
        for _ in 0..<20_000 {
            let count = Int.random(in: 1...8, using: &generator)
            let text = (0..<count).map { _ in pieces.randomElement(using: &generator)! }.joined()
            let ours = try? Self.read(text)
            let theirs = try? JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            // Foundation takes duplicate keys and lone surrogate escapes; we check only where both grammars agree
            // on what the RFC says.
            if text.contains("\"\\uDE00\"") { continue }
            // The RFC leaves a number's range to implementations: Foundation refuses what overflows a Double; we
            // take it (a message's numbers go out as sent).
            if ours != nil, theirs == nil, text.range(of: #"e[0-9]{3,}"#, options: .regularExpression) != nil {
                continue
            }
            // Foundation takes a trailing comma; the RFC does not.
            if ours == nil, theirs != nil, text.range(of: #",\s*[\]}]"#, options: .regularExpression) != nil {
                continue
            }
            #expect((ours != nil) == (theirs != nil), "\(text)")
            if let ours, let string = theirs as? String {
                #expect(ours.string(at: ours.root) == string, "\(text)")
            }
            agreed += 1
        }
        #expect(agreed > 10_000)
    }
}
