package import Logging
package import NIOCore
import SwitchboardLocks

/// A warning logged at most once per interval, with how many times it happened since the last line: a flood of
/// refusals cannot flood the log.
package final class ThrottledLog: Sendable {
    private struct State {
        var since = 0
        var last: NIODeadline?
    }

    private let logger: Logger
    private let message: Logger.Message
    private let interval: TimeAmount
    private let state = Locked(State())

    package init(_ logger: Logger, _ message: Logger.Message, every interval: TimeAmount = .seconds(10)) {
        self.logger = logger
        self.message = message
        self.interval = interval
    }

    /// Counts one occurrence; logs (with `metadata` and the count) if the last line is older than the interval.
    package func note(_ metadata: @autoclosure () -> Logger.Metadata) {
        let now = NIODeadline.now()
        let count = self.state.withLock { state -> Int in
            state.since += 1
            if let last = state.last, now - last < self.interval { return 0 }
            state.last = now
            defer { state.since = 0 }
            return state.since
        }
        guard count > 0 else { return }
        var fields = metadata()
        fields["times"] = "\(count)"
        self.logger.warning(self.message, metadata: fields)
    }
}
