import Foundation
import Logging

/// One JSON object per line on standard error (`--log-format json`): `time`, `level`, `label`, `message`, `source`
/// and the metadata as string fields under `metadata`, for log collectors that parse lines rather than read them.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    private struct Line: Encodable {
        var time: String
        var level: String
        var label: String
        var message: String
        var source: String
        var metadata: [String: String]?
    }

    func log(event: LogEvent) {
        var merged = self.metadata
        if let provided = self.metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        let line = Line(
            time: Date.ISO8601FormatStyle(includingFractionalSeconds: true).format(Date()),
            level: event.level.rawValue, label: self.label, message: "\(event.message)", source: event.source,
            metadata: merged.isEmpty ? nil : merged.mapValues { "\($0)" })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var data = try? encoder.encode(line) else { return }
        data.append(UInt8(ascii: "\n"))
        // One write(2) per line, unbuffered, so lines from several threads never interleave.
        FileHandle.standardError.write(data)
    }
}
