import Crypto
import FoundationEssentials
public import Logging
public import NIOCore
import NIOHTTP1
public import ServiceLifecycle
public import SwitchboardHTTPClient
import SwitchboardLocks

/// Where and how webhooks are sent.
public struct WebhookConfiguration: Sendable {
    /// Every URL gets every event.
    public var urls: [OutboundURL]
    /// The HMAC-SHA256 key of `Switchboard-Signature`: 16 bytes or more.
    public var secret: String
    /// The events sent (by default ``WebhookEvent/Name/defaults``: all but `message`).
    public var events: Set<WebhookEvent.Name>
    /// `room_vacated` and `member_left` wait this long, and are not sent if the room or member is back by then (a
    /// page reload is then no event at all).
    public var leaveDelay: TimeAmount
    /// The deadline of one POST, from connect to the response's status line.
    public var timeout: TimeAmount
    /// The most events in one POST.
    public var maxBatch: Int
    /// The most events waiting per URL; past it new events are dropped and counted.
    public var maxQueued: Int
    /// The most bytes of events waiting per URL (`message` events carry their text); past it new events are dropped
    /// and counted.
    public var maxQueuedBytes: Int
    /// Dropped events are logged at most once per this interval per URL, with how many went since the last line.
    public var overflowLogInterval: TimeAmount
    /// How often a batch is tried before it is dropped (and counted); between tries the wait doubles from
    /// ``firstRetryDelay`` up to ``maxRetryDelay``.
    public var maxAttempts: Int
    public var firstRetryDelay: TimeAmount
    public var maxRetryDelay: TimeAmount
    /// At graceful shutdown, how long what is queued may still be sent (tried again, too) before the rest is
    /// dropped and counted as abandoned.
    public var drainTimeout: TimeAmount

    public init(
        urls: [OutboundURL], secret: String, events: Set<WebhookEvent.Name> = WebhookEvent.Name.defaults,
        leaveDelay: TimeAmount = .seconds(3), timeout: TimeAmount = .seconds(5), maxBatch: Int = 100,
        maxQueued: Int = 10_000, maxQueuedBytes: Int = 8 * 1024 * 1024, maxAttempts: Int = 8,
        firstRetryDelay: TimeAmount = .milliseconds(500), maxRetryDelay: TimeAmount = .seconds(30),
        drainTimeout: TimeAmount = .seconds(5), overflowLogInterval: TimeAmount = .seconds(10)
    ) {
        self.urls = urls
        self.secret = secret
        self.events = events
        self.leaveDelay = leaveDelay
        self.timeout = timeout
        self.maxBatch = maxBatch
        self.maxQueued = maxQueued
        self.maxQueuedBytes = maxQueuedBytes
        self.overflowLogInterval = overflowLogInterval
        self.maxAttempts = maxAttempts
        self.firstRetryDelay = firstRetryDelay
        self.maxRetryDelay = maxRetryDelay
        self.drainTimeout = drainTimeout
    }
}

/// Sends events to every configured URL, in order, batched, signed, with retries, from a bounded queue per URL.
///
/// ``send(_:)`` only appends to the queues: the chat never waits for a receiver. One task per URL POSTs what is
/// queued (up to ``WebhookConfiguration/maxBatch`` events at a time: events that come while a POST is out go in the
/// next), and tries a batch again with back-off until it is answered 2xx or has been tried
/// ``WebhookConfiguration/maxAttempts`` times; the next batch waits, so a receiver sees events in the order they
/// happened. Run it as a `Service`: at graceful shutdown it sends what is queued for up to
/// ``WebhookConfiguration/drainTimeout``, then drops the rest and counts it (``Counts/abandoned``) with a log line.
public final class WebhookDispatcher: Service, Sendable {
    /// What was sent and what was lost, for metrics and tests.
    public struct Counts: Sendable, Equatable {
        /// Events a receiver answered 2xx for.
        public var delivered = 0
        /// POSTs that failed (a status other than 2xx, no answer in time, no connection) and were tried again or
        /// dropped.
        public var failedAttempts = 0
        /// Events dropped because their URL's queue was full.
        public var overflowed = 0
        /// Events dropped after ``WebhookConfiguration/maxAttempts`` failed tries, or not sent by the end of the
        /// drain at shutdown.
        public var abandoned = 0
    }

    private struct Queue {
        var events: [WebhookEvent] = []
        /// The events' ``WebhookEvent/estimatedSize``, summed.
        var bytes = 0
        var waiter: CheckedContinuation<Void, Never>?
        /// Events dropped since the last log line, and when that was.
        var droppedSinceLog = 0
        var lastLog: NIODeadline?
    }

    /// One URL's queue (a class: a lock cannot be copied into an array).
    private final class QueueBox: Sendable {
        let state = Locked(Queue())
    }

    public let configuration: WebhookConfiguration
    private let client: HTTPClient
    private let logger: Logger
    private let queues: [QueueBox]
    private let tally = Locked(Counts())
    /// Set at graceful shutdown: until when the queues may still be sent.
    private let drainDeadline = Locked<NIODeadline?>(nil)

    /// - Parameter client: The node's HTTP client (its connections are kept alive between batches).
    public init(configuration: WebhookConfiguration, client: HTTPClient, logger: Logger) {
        self.configuration = configuration
        self.client = client
        self.logger = logger
        self.queues = configuration.urls.map { _ in QueueBox() }
    }

    public var counts: Counts { self.tally.withLock { $0 } }

    /// Queues `event` for every URL (if its kind is configured); never waits.
    public func send(_ event: WebhookEvent) {
        guard self.configuration.events.contains(event.name) else { return }
        let size = event.estimatedSize
        let configuration = self.configuration
        for (index, queue) in self.queues.enumerated() {
            let now = NIODeadline.now()
            // Accepted (and whom to wake), or dropped (and how many to log now: 0 within the interval).
            let (waiter, accepted, logDropped) = queue.state.withLock {
                queue -> (CheckedContinuation<Void, Never>?, Bool, Int) in
                guard queue.events.count < configuration.maxQueued, queue.bytes + size <= configuration.maxQueuedBytes
                else {
                    queue.droppedSinceLog += 1
                    if let last = queue.lastLog, now - last < configuration.overflowLogInterval {
                        return (nil, false, 0)
                    }
                    queue.lastLog = now
                    defer { queue.droppedSinceLog = 0 }
                    return (nil, false, queue.droppedSinceLog)
                }
                queue.events.append(event)
                queue.bytes += size
                defer { queue.waiter = nil }
                return (queue.waiter, true, 0)
            }
            if accepted {
                waiter?.resume()
                continue
            }
            self.tally.withLock { $0.overflowed += 1 }
            if logDropped > 0 {
                self.logger.warning(
                    "Webhook queue full: events dropped (one line per interval per URL)",
                    metadata: [
                        "url": "\(configuration.urls[index])", "dropped": "\(logDropped)",
                        "interval_seconds": "\(configuration.overflowLogInterval.nanoseconds / 1_000_000_000)",
                        "max_events": "\(configuration.maxQueued)", "max_bytes": "\(configuration.maxQueuedBytes)",
                    ])
            }
        }
    }

    /// Delivers until graceful shutdown, then sends what is queued until it is all sent or the drain deadline has
    /// passed; on cancellation it stops at once. What is left is counted as abandoned.
    public func run() async throws {
        await withGracefulShutdownHandler {
            await withDiscardingTaskGroup { group in
                for index in self.queues.indices {
                    group.addTask { await self.deliver(index) }
                }
            }
        } onGracefulShutdown: {
            self.stop()
        }
    }

    private func stop() {
        self.drainDeadline.withLock { deadline in
            if deadline == nil { deadline = .now() + self.configuration.drainTimeout }
        }
        for queue in self.queues {
            queue.state.withLock { queue in
                defer { queue.waiter = nil }
                return queue.waiter
            }?.resume()
        }
    }

    private var isStopping: Bool { self.drainDeadline.withLock { $0 != nil } || Task.isCancelled }

    /// Past the drain's deadline (or cancelled): nothing more is tried.
    private var mustGiveUp: Bool {
        Task.isCancelled || self.drainDeadline.withLock { deadline in deadline.map { .now() >= $0 } ?? false }
    }

    /// The loop of one URL: wait for events, POST them, again; at shutdown, until its queue is empty or it must
    /// give up.
    private func deliver(_ index: Int) async {
        let url = self.configuration.urls[index]
        while !self.mustGiveUp {
            let batch = await self.nextBatch(index)
            if batch.isEmpty {
                if self.isStopping { break }
                continue
            }
            await self.post(batch, to: url)
        }
        let left = self.queues[index].state.withLock { queue in
            defer {
                queue.events = []
                queue.bytes = 0
            }
            return queue.events.count
        }
        if left > 0 {
            self.tally.withLock { $0.abandoned += left }
            self.logger.error(
                "Webhook events dropped at shutdown: not sent within the drain time",
                metadata: ["url": "\(url)", "events": "\(left)"])
        }
    }

    private func nextBatch(_ index: Int) async -> [WebhookEvent] {
        let maxBatch = self.configuration.maxBatch
        let taken = self.queues[index].state.withLock { queue -> [WebhookEvent] in
            let batch = Array(queue.events.prefix(maxBatch))
            queue.events.removeFirst(batch.count)
            queue.bytes -= batch.reduce(0) { $0 + $1.estimatedSize }
            return batch
        }
        if !taken.isEmpty { return taken }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let resumeNow = self.queues[index].state.withLock { queue -> Bool in
                    if !queue.events.isEmpty || self.isStopping { return true }
                    queue.waiter = waiter
                    return false
                }
                if resumeNow { waiter.resume() }
            }
        } onCancel: {
            self.stop()
        }
        return []
    }

    /// POSTs `batch` until a 2xx, or drops it after the last attempt.
    private func post(_ batch: [WebhookEvent], to url: OutboundURL) async {
        var delay = self.configuration.firstRetryDelay
        var attempts = 0
        for attempt in 1...self.configuration.maxAttempts {
            attempts = attempt
            let time = WebhookEvent.now()
            let body = (try? JSONEncoder().encode(WebhookBatch(time: time, events: batch))) ?? Data()
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "User-Agent", value: "Switchboard-Webhooks")
            headers.add(
                name: "Switchboard-Signature",
                value: Self.signature(body, time: time, secret: self.configuration.secret))
            do {
                let status = try await self.client.send(
                    .POST, url, headers: headers, body: ByteBuffer(bytes: body), deadline: self.configuration.timeout
                ).status
                if (200..<300).contains(status) {
                    self.tally.withLock { $0.delivered += batch.count }
                    return
                }
                throw HTTPClientError("HTTP status \(status)")
            } catch {
                self.tally.withLock { $0.failedAttempts += 1 }
                self.logger.warning(
                    "Webhook POST failed",
                    metadata: [
                        "url": "\(url)", "attempt": "\(attempt)", "events": "\(batch.count)", "error": "\(error)",
                    ])
            }
            if attempt == self.configuration.maxAttempts || self.mustGiveUp { break }
            // While draining, no wait outlasts the drain.
            let wait = self.drainDeadline.withLock { deadline in
                deadline.map { min(delay, $0 - .now()) } ?? delay
            }
            try? await Task.sleep(for: .nanoseconds(max(wait.nanoseconds, 0)))
            delay = min(delay * 2, self.configuration.maxRetryDelay)
        }
        self.tally.withLock { $0.abandoned += batch.count }
        self.logger.error(
            attempts == self.configuration.maxAttempts
                ? "Webhook events dropped after every attempt failed"
                : "Webhook events dropped at shutdown: their POST failed and the drain time is over",
            metadata: ["url": "\(url)", "events": "\(batch.count)", "attempts": "\(attempts)"])
    }

    /// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, as Stripe signs: the receiver recomputes it and
    /// refuses a timestamp too old (a replay).
    static func signature(_ body: Data, time: Int64, secret: String) -> String {
        let seconds = time / 1000
        var signed = Data("\(seconds).".utf8)
        signed.append(body)
        let mac = HMAC<SHA256>.authenticationCode(for: signed, using: SymmetricKey(data: Data(secret.utf8)))
        let hex = mac.map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
        return "t=\(seconds),v1=\(hex)"
    }
}
