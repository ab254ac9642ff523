import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// Stops accepting for a while when `accept` fails for want of resources (no descriptors left: `EMFILE`,
/// `ENFILE`; no memory: `ENOBUFS`, `ENOMEM`), and says so in the log.
///
/// The listening socket stays readable while connections wait in its backlog, so retrying at once spins a core on
/// failing `accept4` calls (NIO's own `AcceptBackoffHandler` cannot help: after a failed accept the channel keeps its
/// read registered). Pausing the channel's reads takes the socket out of the poll set until the back-off ends: 10 ms,
/// doubling to 1 s while it keeps failing (Go's `net/http`; nginx waits 500 ms). The first failure of a streak is
/// logged, then one line every 10 s at most, with the count. Clients wait in the backlog meanwhile, and are served
/// once descriptors are free again.
final class AcceptErrorHandler: ChannelInboundHandler {
    typealias InboundIn = any Channel

    private let logger: Logger
    private var backoff: TimeAmount?
    private var resume: Scheduled<Void>?
    private var failures = 0
    private var lastLog: NIODeadline?
    private let onFailure: @Sendable () -> Void

    static let firstBackoff = TimeAmount.milliseconds(10)
    static let maxBackoff = TimeAmount.seconds(1)

    init(logger: Logger, onFailure: @escaping @Sendable () -> Void) {
        self.logger = logger
        self.onFailure = onFailure
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // An accept succeeded: the next failure starts a new streak.
        self.backoff = nil
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let error = error as? IOError, Self.isResourceShortage(error.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        self.onFailure()
        self.failures += 1
        let backoff = self.backoff.map { min($0 * 2, Self.maxBackoff) } ?? Self.firstBackoff
        self.backoff = backoff
        self.log(error, backoff: backoff)
        guard self.resume == nil, let options = context.channel.syncOptions else { return }
        try? options.setOption(.autoRead, value: false)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        self.resume = context.eventLoop.scheduleTask(in: backoff) {
            let (handler, context) = bound.value
            handler.resume = nil
            try? context.channel.syncOptions?.setOption(.autoRead, value: true)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.resume?.cancel()
        self.resume = nil
        context.fireChannelInactive()
    }

    private func log(_ error: IOError, backoff: TimeAmount) {
        let now = NIODeadline.now()
        if let last = self.lastLog, now - last < .seconds(10) { return }
        self.lastLog = now
        self.logger.error(
            "accept4() failed (\(error.errnoCode): \(String(cString: strerror(error.errnoCode)))): not accepting for \(backoff.nanoseconds / 1_000_000) ms",
            metadata: ["switchboard.failures": "\(self.failures)"])
        self.failures = 0
    }

    static func isResourceShortage(_ code: CInt) -> Bool {
        code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM
    }
}
