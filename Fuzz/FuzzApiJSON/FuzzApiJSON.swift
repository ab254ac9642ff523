import Foundation
import SwitchboardJSON

@testable import SwitchboardApi

/// The server API's request bodies: any bytes through `JSONText` (the strict reader), then, when it takes them, every
/// value walked as the API walks them (members, elements, strings, raw bytes) and the publish and batch shapes read
/// from it. Checks: what we take, Foundation's `JSONSerialization` takes too (but for numbers past a `Double`, which
/// the RFC leaves to implementations), every string decodes to what Foundation decodes, and a value's raw bytes are
/// themselves one JSON text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzApiJSON(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))
    guard let text = try? JSONText(bytes) else { return 0 }
    let foundation = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    if foundation == nil, !hasHugeNumber(bytes) { fatalError("JSONText took what Foundation refuses") }
    walk(text, text.root)
    _ = try? PublishRequest(text, at: text.root, path: "")
    if let commands = try? JSONFields(text, at: text.root, path: "", known: ["commands"]).array("commands") {
        for (index, command) in commands.enumerated() {
            if let publish = try? JSONFields(text, at: command, path: "c[\(index)]", known: ["publish"]).required(
                "publish")
            {
                _ = try? PublishRequest(text, at: publish, path: "c[\(index)].publish")
            }
        }
    }
    return 0
}

private func walk(_ text: JSONText, _ value: Range<Int>) {
    // Each value's bytes are a JSON text of their own (what `data` sends).
    guard (try? JSONText(Array(text.bytes[value]))) != nil else { fatalError("a value's bytes are not JSON") }
    switch text.kind(of: value) {
    case .object: for member in text.members(of: value) { walk(text, member.value) }
    case .array: for element in text.elements(of: value) { walk(text, element) }
    case .string:
        let ours = text.string(at: value)
        let theirs = try? JSONSerialization.jsonObject(with: Data(text.bytes[value]), options: [.fragmentsAllowed])
        guard let theirs = theirs as? String, theirs == ours else { fatalError("a string decodes differently") }
    case .number, .bool, .null: break
    }
}

/// A number with an exponent of three digits or more, or of 300 digits or more: past a `Double`, which Foundation
/// refuses.
private func hasHugeNumber(_ bytes: [UInt8]) -> Bool {
    var exponent = -1
    var run = 0
    for byte in bytes {
        let isDigit = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
        run = isDigit ? run + 1 : 0
        if run >= 300 { return true }
        if byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") {
            exponent = 0
        } else if exponent >= 0, isDigit {
            exponent += 1
            if exponent >= 3 { return true }
        } else if exponent >= 0, byte != UInt8(ascii: "+"), byte != UInt8(ascii: "-") {
            exponent = -1
        }
    }
    return false
}
