import NIOConcurrencyHelpers
import NIOCore

/// Drives keepalive pings, pong deadlines and idle timeouts for every WebSocket of one event loop from a single
/// repeated task.
///
/// A timer per socket would cost each idle connection a scheduled task, a closure and a promise (about 700 bytes
/// measured); here a socket costs one dictionary entry. The tick runs every second (or a quarter of the shortest
/// interval configured on the loop), so deadlines are kept to within a tick.
///
/// A loop's scheduler exists while the loop has sockets with keepalive: made for the first, gone with the last (its
/// task cancelled and its entry removed), so loops that end, or go quiet, leave nothing behind.
final class KeepaliveScheduler {
    private static let schedulers = NIOLockedValueBox<[ObjectIdentifier: NIOLoopBound<KeepaliveScheduler>]>([:])

    /// Whether `eventLoop` has a scheduler now (for tests: not once its last socket closed).
    static func isActive(on eventLoop: any EventLoop) -> Bool {
        self.schedulers.withLockedValue { $0[ObjectIdentifier(eventLoop)] != nil }
    }

    private let eventLoop: any EventLoop
    private var handlers: [ObjectIdentifier: WebSocketHandler] = [:]
    private var task: RepeatedTask?
    private var period: TimeAmount = .seconds(1)

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The scheduler of `eventLoop`; call on that loop.
    static func on(_ eventLoop: any EventLoop) -> KeepaliveScheduler {
        let key = ObjectIdentifier(eventLoop)
        let bound = self.schedulers.withLockedValue { schedulers in
            if let existing = schedulers[key] { return existing }
            let made = NIOLoopBound(KeepaliveScheduler(eventLoop: eventLoop), eventLoop: eventLoop)
            schedulers[key] = made
            return made
        }
        return bound.value
    }

    func register(_ handler: WebSocketHandler, finestInterval: TimeAmount) {
        self.handlers[ObjectIdentifier(handler)] = handler
        let quarter = TimeAmount.nanoseconds(finestInterval.nanoseconds / 4)
        let wanted = max(min(TimeAmount.seconds(1), quarter), TimeAmount.milliseconds(10))
        if self.task == nil || wanted < self.period {
            self.period = min(self.period, wanted)
            self.task?.cancel()
            let bound = NIOLoopBound(self, eventLoop: self.eventLoop)
            self.task = self.eventLoop.scheduleRepeatedTask(initialDelay: self.period, delay: self.period) { _ in
                bound.value.tick()
            }
        }
    }

    func unregister(_ handler: WebSocketHandler) {
        self.handlers[ObjectIdentifier(handler)] = nil
        guard self.handlers.isEmpty else { return }
        // No sockets on this loop: stop ticking, and forget the loop until the next one registers. On the loop, as
        // every registration of this loop is, so no registration can slip in between.
        self.task?.cancel()
        self.task = nil
        let key = ObjectIdentifier(self.eventLoop)
        Self.schedulers.withLockedValue { schedulers in
            if schedulers[key]?.value === self { schedulers[key] = nil }
        }
    }

    private func tick() {
        let now = self.eventLoop.now
        // Iterating a copy: a handler may close (and unregister) while we go.
        for handler in self.handlers.values {
            handler.keepaliveTick(now: now)
        }
    }
}
