import Foundation

/// Why a node could not be built: a file it names cannot be read, a key is unusable, a JWKS URL does not answer.
/// Its description is one sentence for an operator.
public struct NodeError: Error, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}

/// A key file that cannot be read.
struct KeyFileError: Error, CustomStringConvertible {
    var path: String
    var description: String { "cannot read \(self.path)" }
}

/// A key file's text; a missing or unreadable one says which.
func readKeyFile(_ path: String) throws -> String {
    do {
        return try String(contentsOfFile: path, encoding: .utf8)
    } catch {
        throw KeyFileError(path: path)
    }
}
