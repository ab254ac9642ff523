public import Logging
import NIOConcurrencyHelpers
public import NIOCore
public import ServiceLifecycle
import SwitchboardLocks
import Synchronization

/// Keeps one ``RedisConnection`` open, reconnecting forever with exponential backoff and jitter.
///
/// While the connection is down, commands fail at once with ``RedisError/Kind/connectionUnavailable``: callers get
/// a clear error instead of an unbounded queue or a hang. All state lives on one event loop.
///
/// Run it as a swift-service-lifecycle `Service` (``run()``), or call ``start()`` and ``shutdown()`` yourself.
public final class RedisClient: Service {
    /// How long to wait between connection attempts.
    public struct Backoff: Sendable, Hashable {
        /// The delay after the first failure; it doubles with each further failure.
        public var initial: Duration
        /// The longest delay.
        public var maximum: Duration

        /// Creates a backoff. The defaults retry quickly and at least once a second, so subscriptions come back
        /// within about a second of Redis accepting connections again.
        public init(initial: Duration = .milliseconds(50), maximum: Duration = .seconds(1)) {
            self.initial = initial
            self.maximum = maximum
        }

        /// The delay before attempt `attempt` (0-based), with "equal jitter": between half and all of the
        /// exponential delay, so nodes that lost Redis together do not reconnect in lockstep.
        func delay(attempt: Int) -> TimeAmount {
            let initial = TimeAmount(self.initial).nanoseconds
            let maximum = TimeAmount(self.maximum).nanoseconds
            let exponential = min(maximum, initial << min(attempt, 30))
            let half = exponential / 2
            return .nanoseconds(half + Int64.random(in: 0...max(half, 0)))
        }
    }

    /// The reconnection loop's state; touched only on ``eventLoop``.
    private final class State {
        var attempt = 0
        var reconnect: Scheduled<Void>?
        var isStarted = false
        /// A connection was established before: the next one is a reconnection.
        var everConnected = false
    }

    /// What senders on any thread need: read under a lock (no hop per command), written only on ``eventLoop``.
    private struct Link {
        var connection: RedisConnection?
        var lastError: String?
        var isShutDown = false
    }

    /// What it connects to.
    public let configuration: RedisConfiguration
    /// The loop its connection and state live on.
    public let eventLoop: any EventLoop
    private let backoff: Backoff
    private let logger: Logger
    private let onPush: (@Sendable (RESPValue) -> Void)?
    private let onMessages: (@Sendable ([(channel: ByteBuffer, payload: ByteBuffer)]) -> Void)?
    private let onConnected: @Sendable (RedisConnection) -> EventLoopFuture<Void>
    private let onDisconnected: @Sendable () -> Void
    private let state: NIOLoopBoundBox<State>
    private let link = NIOLockedValueBox(Link())
    /// Refusals, timeouts and reconnections, over every connection of this client.
    let counters = RedisCounters()

    /// Creates a client; call ``start()`` to connect.
    ///
    /// - Parameters:
    ///   - onPush: For a subscriber connection: called on `eventLoop` with each push that is not a message (and with
    ///     messages too, as values, without `onMessage`).
    ///   - onMessages: For a subscriber connection: called on `eventLoop` with the messages of each read, in order.
    ///   - onConnected: Runs on `eventLoop` after each (re)connection, before commands are accepted on it
    ///     (a subscriber resubscribes here). If its future fails, the connection is closed and retried.
    ///   - onDisconnected: Runs on `eventLoop` when an established connection is lost.
    public init(
        configuration: RedisConfiguration,
        eventLoop: any EventLoop,
        backoff: Backoff = .init(),
        logger: Logger,
        onPush: (@Sendable (RESPValue) -> Void)? = nil,
        onMessages: (@Sendable ([(channel: ByteBuffer, payload: ByteBuffer)]) -> Void)? = nil,
        onConnected: @escaping @Sendable (RedisConnection) -> EventLoopFuture<Void> = {
            $0.eventLoop.makeSucceededVoidFuture()
        },
        onDisconnected: @escaping @Sendable () -> Void = {}
    ) {
        self.configuration = configuration
        self.eventLoop = eventLoop
        self.backoff = backoff
        self.logger = logger
        self.onPush = onPush
        self.onMessages = onMessages
        self.onConnected = onConnected
        self.onDisconnected = onDisconnected
        self.state = .makeBoxSendingValue(State(), eventLoop: eventLoop)
    }

    /// Starts connecting in the background (and reconnecting whenever the connection is lost).
    public func start() {
        self.eventLoop.execute {
            guard !self.state.value.isStarted else { return }
            self.state.value.isStarted = true
            self.connect()
        }
    }

    /// Starts, runs until graceful shutdown (or cancellation), then stops reconnecting and closes the connection.
    public func run() async throws {
        self.start()
        try? await gracefulShutdown()
        await self.shutdown()
    }

    /// Waits until connected, or until `timeout` passes.
    ///
    /// - Returns: Whether the client is connected.
    public func waitUntilConnected(timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if await self.isConnected { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return await self.isConnected
    }

    /// Whether a connection is established (and its `onConnected` work is done).
    public var isConnected: Bool {
        get async { self.isConnectedNow }
    }

    /// ``isConnected``, from any thread without suspending.
    var isConnectedNow: Bool { self.link.withLockedValue { $0.connection != nil } }

    /// Bytes of commands queued or waiting for replies on the current connection (bounded by
    /// ``RedisConfiguration/maxPendingBytes``).
    public var bytesPending: Int { self.link.withLockedValue { $0.connection }?.bytesPending ?? 0 }
    /// Commands queued or waiting for replies on the current connection.
    public var commandsPending: Int { self.link.withLockedValue { $0.connection }?.commandsPending ?? 0 }

    /// Stops reconnecting and closes the connection.
    public func shutdown() async {
        let connection = try? await self.eventLoop.submit { () -> RedisConnection? in
            self.state.value.reconnect?.cancel()
            self.state.value.reconnect = nil
            return self.link.withLockedValue { link in
                link.isShutDown = true
                defer { link.connection = nil }
                return link.connection
            }
        }.value()
        await connection?.close()
    }

    /// Sends a command on the current connection.
    ///
    /// - Throws: ``RedisError``; ``RedisError/Kind/connectionUnavailable`` at once while disconnected.
    @discardableResult
    public func send(_ command: RESPCommand) async throws -> RESPValue {
        try await self.sendNow(command).value()
    }

    /// Sends a command without waiting; fails at once while disconnected.
    public func sendNow(_ command: RESPCommand) -> EventLoopFuture<RESPValue> {
        // Read under a lock rather than hopping to the loop: the connection batches commands from any thread
        // into one flush, and a hop per command would cost a wake-up per command.
        let link = self.link.withLockedValue { $0 }
        guard let connection = link.connection else {
            return self.eventLoop.makeFailedFuture(self.unavailableError(link))
        }
        return connection.sendNow(command)
    }

    /// Sends a command whose reply the server sends as a push (`SUNSUBSCRIBE` on a sharded subscriber connection);
    /// nothing while disconnected (the connection it was for is gone).
    func sendWithoutReply(_ command: RESPCommand) {
        self.link.withLockedValue { $0.connection }?.sendWithoutReply(command)
    }

    /// Closes the current connection (it reconnects as after any loss): for a connection that has gone silent.
    func dropConnection() {
        self.link.withLockedValue { $0.connection }?.channel.close(promise: nil)
    }

    /// Sends several commands on the same connection, in order; fails them all at once while disconnected.
    public func sendPipelined(_ commands: [RESPCommand]) -> [EventLoopFuture<RESPValue>] {
        let link = self.link.withLockedValue { $0 }
        guard let connection = link.connection else {
            let error = self.unavailableError(link)
            return commands.map { _ in self.eventLoop.makeFailedFuture(error) }
        }
        return connection.sendPipelined(commands)
    }

    /// `PUBLISH channel payload` on the current connection, without a ``RESPCommand`` or a future per message: the
    /// path of a busy publisher. `reply` gets the number of receivers (or `()`), or the failure: at once while
    /// disconnected.
    public func publishNow(_ payload: ByteBuffer, to channel: String, reply: PublishReply) {
        self.publishNow(payload, to: channel, sharded: false, reply: reply)
    }

    /// `PUBLISH` (or, `sharded`, `SPUBLISH`) on the current connection.
    func publishNow(_ payload: ByteBuffer, to channel: String, sharded: Bool, reply: PublishReply) {
        let link = self.link.withLockedValue { $0 }
        guard let connection = link.connection else { return reply.fail(self.unavailableError(link)) }
        connection.publishNow(payload, to: channel, sharded: sharded, reply: reply)
    }

    /// Sends `PING` and waits at most `timeout` for the answer: whether Redis really answers now, which the
    /// connection being open does not tell (a hung server keeps its connections).
    ///
    /// - Throws: ``RedisError``: ``RedisError/Kind/timeout`` when no answer came in time, or the failure of the
    ///   command (at once while disconnected).
    public func ping(timeout: Duration) async throws {
        let answered = self.eventLoop.makePromise(of: Void.self)
        let done = NIOLockedValueBox(false)
        let complete = { @Sendable (result: Result<Void, any Error>) in
            guard
                !done.withLockedValue({ done in
                    defer { done = true }; return done
                })
            else { return }
            answered.completeWith(result)
        }
        let timer = self.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            complete(.failure(RedisError(.timeout, "no answer to PING within \(timeout)")))
        }
        self.sendNow(RESPCommand("PING")).whenComplete { result in
            timer.cancel()
            complete(result.map { _ in })
        }
        try await answered.futureResult.value()
    }

    /// Runs `script` with `EVALSHA` on the current connection (loading it there first, pipelined, if this
    /// connection has not run it yet); if Redis lost its script cache (`NOSCRIPT`), runs it once with `EVAL`.
    ///
    /// - Throws: ``RedisError``; ``RedisError/Kind/connectionUnavailable`` at once while disconnected.
    @discardableResult
    public func evaluate(
        _ script: RedisScript, keys: [String] = [], arguments: [String] = []
    ) async throws -> RESPValue {
        try await self.evaluateNow(
            script, keys: keys.map { ByteBuffer(string: $0) }, arguments: arguments.map { ByteBuffer(string: $0) }
        ).value()
    }

    /// ``evaluate(_:keys:arguments:)`` without waiting: commands from one thread keep their order.
    public func evaluateNow(
        _ script: RedisScript, keys: [ByteBuffer], arguments: [ByteBuffer]
    ) -> EventLoopFuture<RESPValue> {
        let link = self.link.withLockedValue { $0 }
        guard let connection = link.connection else {
            return self.eventLoop.makeFailedFuture(self.unavailableError(link))
        }
        return connection.evaluateNow(script, keys: keys, arguments: arguments).flatMapError { error in
            guard let error = error as? RedisError, error.serverErrorCode == "NOSCRIPT" else {
                return connection.eventLoop.makeFailedFuture(error)
            }
            // Someone flushed the script cache (SCRIPT FLUSH): run this call with the source, and load again next time.
            connection.forgetScript(script)
            return connection.sendNow(
                RESPCommand(
                    "EVAL",
                    [ByteBuffer(string: script.source), ByteBuffer(string: String(keys.count))] + keys + arguments))
        }
    }

    /// Runs a script call as its caller encoded it (see ``RedisScriptCall``): no future of its own; `completion`
    /// completes once the script has run, or fails (at once while disconnected).
    public func evaluateNow(_ call: RedisScriptCall, completion: EventLoopPromise<Void>?) {
        let link = self.link.withLockedValue { $0 }
        guard let connection = link.connection else {
            completion?.fail(self.unavailableError(link))
            return
        }
        connection.evaluateNow(call, completion: completion)
    }

    /// The call after `ASKING` (Redis Cluster, a slot being migrated to this node).
    func evaluateAsking(_ call: RedisScriptCall, completion: EventLoopPromise<Void>?) {
        let link = self.link.withLockedValue { $0 }
        guard let connection = link.connection else {
            completion?.fail(self.unavailableError(link))
            return
        }
        connection.evaluateAsking(call, completion: completion)
    }

    /// The connection, if established; only on ``eventLoop``.
    var currentConnection: RedisConnection? {
        self.eventLoop.preconditionInEventLoop()
        return self.link.withLockedValue { $0.connection }
    }

    private var isShutDown: Bool { self.link.withLockedValue { $0.isShutDown } }

    private func unavailableError(_ link: Link) -> RedisError {
        self.counters.failedWhileDisconnected.wrappingAdd(1, ordering: .relaxed)
        if link.isShutDown { return RedisError(.connectionUnavailable, "the client was shut down") }
        let reason = link.lastError ?? "connecting to \(self.configuration)"
        return RedisError(.connectionUnavailable, "not connected (\(reason)); reconnecting")
    }

    // MARK: Connection loop (on eventLoop)

    private func connect() {
        guard !self.isShutDown else { return }
        RedisConnection.makeConnection(
            to: self.configuration,
            on: self.eventLoop,
            logger: self.logger,
            onPush: self.onPush,
            onMessages: self.onMessages,
            counters: self.counters
        ).flatMap { connection in
            self.onConnected(connection).map { connection }.flatMapError { error in
                connection.channel.close(promise: nil)
                return self.eventLoop.makeFailedFuture(error)
            }
        }.whenComplete { result in
            switch result {
            case .success(let connection): self.connected(connection)
            case .failure(let error): self.connectFailed(error)
            }
        }
    }

    private func connected(_ connection: RedisConnection) {
        let state = self.state.value
        let accepted = self.link.withLockedValue { link -> Bool in
            guard !link.isShutDown else { return false }
            link.connection = connection
            link.lastError = nil
            return true
        }
        guard accepted else {
            connection.channel.close(promise: nil)
            return
        }
        if state.everConnected { self.counters.reconnects.wrappingAdd(1, ordering: .relaxed) }
        state.everConnected = true
        if state.attempt > 0 {
            self.logger.info("Redis reconnected", metadata: ["redis": "\(self.configuration)"])
        } else {
            self.logger.debug("Redis connected", metadata: ["redis": "\(self.configuration)"])
        }
        state.attempt = 0
        connection.closeFuture.whenComplete { _ in
            let (wasCurrent, isShutDown) = self.link.withLockedValue { link -> (Bool, Bool) in
                guard link.connection === connection else { return (false, link.isShutDown) }
                link.connection = nil
                return (true, link.isShutDown)
            }
            guard wasCurrent else { return }
            self.onDisconnected()
            guard !isShutDown else { return }
            self.logger.warning("Redis connection lost; reconnecting", metadata: ["redis": "\(self.configuration)"])
            self.scheduleReconnect()
        }
    }

    private func connectFailed(_ error: any Error) {
        let state = self.state.value
        guard !self.isShutDown else { return }
        // The first failure of an outage is a warning; retries say the same thing at debug level.
        if state.attempt == 0 {
            self.logger.warning("Redis unavailable; retrying", metadata: ["error": "\(error)"])
        } else {
            self.logger.debug(
                "Redis still unavailable", metadata: ["error": "\(error)", "attempt": "\(state.attempt)"])
        }
        self.link.withLockedValue { $0.lastError = "\(error)" }
        self.scheduleReconnect()
    }

    private func scheduleReconnect() {
        let state = self.state.value
        let delay = self.backoff.delay(attempt: state.attempt)
        state.attempt += 1
        state.reconnect = self.eventLoop.scheduleTask(in: delay) {
            self.state.value.reconnect = nil
            self.connect()
        }
    }
}
