import SwitchboardNode

/// Config files as `check-config` and the server's start read them: YAML (Yams and libyaml), every setting's value
/// checks, duplicates, the hints for unknown keys. Besides not crashing, each problem's line must be one of the file's
/// (counted as YAML counts them: a lone CR and the Unicode line breaks end a line too).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfigFile(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
    let lines = yamlLineCount(text)
    for problem in ConfigFile.problems(in: text, checkingFiles: false) {
        if let line = problem.line, !(1...lines + 1).contains(line) {
            fatalError("line \(line) of a \(lines)-line file: \(problem.message)")
        }
    }
    return 0
}

/// Lines as libyaml numbers them: CR LF, CR, LF, NEL, LS and PS each end one.
func yamlLineCount(_ text: String) -> Int {
    var lines = 1
    var afterCR = false
    for scalar in text.unicodeScalars {
        switch scalar {
        case "\n": if !afterCR { lines += 1 }
        case "\r", "\u{85}", "\u{2028}", "\u{2029}": lines += 1
        default: break
        }
        afterCR = scalar == "\r"
    }
    return lines
}
