public import Logging
import SwitchboardLocks

/// A logger whose lines are kept, for tests that check what was logged (and how often).
public final class RecordedLogs: Sendable {
    /// One line: its level, message and metadata.
    public struct Line: Sendable {
        public var level: Logger.Level
        public var message: String
        public var metadata: [String: String]
    }

    private let lines = Locked<[Line]>([])

    public init() {}

    /// A logger (at `level`) that records here.
    public func logger(level: Logger.Level = .trace) -> Logger {
        var logger = Logger(label: "recorded") { _ in Handler(logs: self) }
        logger.logLevel = level
        return logger
    }

    /// The lines logged so far whose message contains `text`.
    public func lines(containing text: String) -> [Line] {
        self.lines.withLock { $0.filter { $0.message.contains(text) } }
    }

    fileprivate func record(_ line: Line) {
        self.lines.withLock { $0.append(line) }
    }

    private struct Handler: LogHandler {
        let logs: RecordedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { self.metadata[key] }
            set { self.metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            var merged = self.metadata
            for (key, value) in event.metadata ?? [:] { merged[key] = value }
            self.logs.record(
                Line(
                    level: event.level, message: "\(event.message)",
                    metadata: merged.mapValues { "\($0)" }))
        }
    }
}
