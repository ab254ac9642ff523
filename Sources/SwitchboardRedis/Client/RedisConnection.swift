public import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix
import SwitchboardLocks
import Synchronization

/// One connection to Redis with pipelining: any number of commands may be in flight; replies match them in order.
///
/// Commands can be sent from any thread. A reply that is an error (`-ERR …`) fails its command with a
/// ``RedisError`` of kind ``RedisError/Kind/serverError``; a connection that breaks, times out or receives bytes that
/// are not valid RESP fails every pending command and closes. It does not reconnect: ``RedisClient`` does that.
public final class RedisConnection: Sendable {
    /// The NIO channel.
    let channel: any Channel
    /// What it connected with.
    public let configuration: RedisConfiguration

    /// The loop the connection runs on.
    public var eventLoop: any EventLoop { self.channel.eventLoop }
    /// Completes when the connection has closed, for whatever reason.
    public var closeFuture: EventLoopFuture<Void> { self.channel.closeFuture }

    /// Commands waiting for the drain task on the connection's loop, and the scripts queued for loading on this
    /// connection (under the same lock, so a script's `SCRIPT LOAD` is always queued before any use of it).
    private let outbox: NIOLockedValueBox<Outbox>
    /// Commands queued or waiting for their replies, against ``RedisConfiguration/maxPendingBytes``: counted in
    /// here, out by the handler as replies come (or the connection fails).
    private let budget: RedisPendingBudget

    /// Bytes of commands queued or waiting for replies on this connection now.
    public var bytesPending: Int { self.budget.bytes.load(ordering: .relaxed) }
    /// Commands queued or waiting for replies on this connection now.
    public var commandsPending: Int { self.budget.commands.load(ordering: .relaxed) }

    fileprivate struct Outbox {
        var requests: [RedisRequest] = []
        var loadedScripts: Set<String> = []
    }

    /// Where refusals and timeouts are counted (the client's, over its reconnections).
    let counters: RedisCounters

    private init(
        channel: any Channel, configuration: RedisConfiguration, counters: RedisCounters, budget: RedisPendingBudget,
        outbox: NIOLockedValueBox<Outbox>
    ) {
        self.channel = channel
        self.outbox = outbox
        self.configuration = configuration
        self.counters = counters
        self.budget = budget
    }

    /// Connects, authenticates (`AUTH`) and selects the database (`SELECT`).
    ///
    /// - Parameters:
    ///   - configuration: The server and the timeouts.
    ///   - eventLoop: The loop the connection runs on.
    ///   - logger: Where the connection logs (warnings for timeouts, debug for health checks).
    ///   - onPush: Called on `eventLoop` with every push that is not a message (RESP3 pushes, RESP2 `pmessage`
    ///     arrays), and with every message when there is no `onMessage`; `nil` for a command connection.
    ///   - onMessages: Called on `eventLoop` with the pub/sub messages of each read, channel and payload (`message`
    ///     and `smessage`, sliced from the bytes read), in order.
    /// - Throws: ``RedisError`` when the server cannot be reached in time or refuses the credentials.
    public static func connect(
        to configuration: RedisConfiguration,
        on eventLoop: any EventLoop,
        logger: Logger,
        onPush: (@Sendable (RESPValue) -> Void)? = nil,
        onMessages: (@Sendable ([(channel: ByteBuffer, payload: ByteBuffer)]) -> Void)? = nil
    ) async throws -> RedisConnection {
        try await self.makeConnection(
            to: configuration, on: eventLoop, logger: logger, onPush: onPush, onMessages: onMessages
        ).value()
    }

    static func makeConnection(
        to configuration: RedisConfiguration,
        on eventLoop: any EventLoop,
        logger: Logger,
        onPush: (@Sendable (RESPValue) -> Void)?,
        onMessages: (@Sendable ([(channel: ByteBuffer, payload: ByteBuffer)]) -> Void)? = nil,
        counters: RedisCounters = RedisCounters()
    ) -> EventLoopFuture<RedisConnection> {
        let budget = RedisPendingBudget(maxBytes: configuration.maxPendingBytes)
        let outbox = NIOLockedValueBox(Outbox())
        // Without `onMessages`, messages reach `onPush` as values, one by one, as they always did.
        var onAnyMessages = onMessages
        if onAnyMessages == nil, let onPush {
            onAnyMessages = { messages in
                for (channel, payload) in messages {
                    let kind = RESPValue.bulkString(ByteBuffer(string: "message"))
                    onPush(.array([kind, .bulkString(channel), .bulkString(payload)]))
                }
            }
        }
        let messages = onAnyMessages
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls = configuration.tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try tls.makeHandler(host: configuration.host))
                    }
                    try channel.pipeline.syncOperations.addHandler(
                        RedisCommandHandler(
                            configuration: configuration,
                            routesPubSubMessages: onPush != nil,
                            counters: counters,
                            budget: budget,
                            logger: logger,
                            onPush: onPush,
                            onMessages: messages,
                            onNoScript: { sha1 in outbox.withLockedValue { _ = $0.loadedScripts.remove(sha1) } }
                        )
                    )
                }
            }
        let connected = bootstrap.connect(host: configuration.host, port: configuration.port)
            .flatMapErrorThrowing { error in
                throw RedisError(.connectionUnavailable, "cannot connect to \(configuration): \(error)")
            }
            .map {
                RedisConnection(
                    channel: $0, configuration: configuration, counters: counters, budget: budget, outbox: outbox)
            }
        return connected.flatMap { connection in
            connection.handshake().map { connection }.flatMapError { error in
                connection.channel.close(promise: nil)
                return eventLoop.makeFailedFuture(error)
            }
        }
    }

    /// `AUTH` and `SELECT`, pipelined; over TLS with neither, a `PING`, so that a TLS connection is handed out only
    /// once the handshake is done and the server answered (a refused certificate fails the connect, not the first
    /// command, and the client's reconnection loop sees it).
    private func handshake() -> EventLoopFuture<Void> {
        var commands: [RESPCommand] = []
        if let password = self.configuration.password {
            if let username = self.configuration.username {
                commands.append(RESPCommand("AUTH", username, password))
            } else {
                commands.append(RESPCommand("AUTH", password))
            }
        }
        if self.configuration.database != 0 {
            commands.append(RESPCommand("SELECT", String(self.configuration.database)))
        }
        if commands.isEmpty && self.configuration.tls != nil { commands.append(RESPCommand("PING")) }
        guard !commands.isEmpty else { return self.eventLoop.makeSucceededVoidFuture() }
        let replies = self.sendPipelined(commands)
        return EventLoopFuture.andAllSucceed(replies, on: self.eventLoop)
    }

    /// Sends a command and waits for its reply.
    ///
    /// - Throws: ``RedisError``: the server's error reply, a timeout, or a lost connection.
    @discardableResult
    public func send(_ command: RESPCommand) async throws -> RESPValue {
        try await self.sendNow(command).value()
    }

    /// Sends a command without waiting; the future completes with its reply.
    ///
    /// Commands sent close together, from any threads, leave in one write and one flush: they queue in an outbox
    /// that a single task on the connection's loop drains. Commands from one thread keep their order.
    public func sendNow(_ command: RESPCommand) -> EventLoopFuture<RESPValue> {
        let promise = self.eventLoop.makePromise(of: RESPValue.self)
        self.enqueue(.command(command, promise))
        return promise.futureResult
    }

    /// Sends a command whose reply comes as a push (see ``RedisRequest/withoutReply(_:)``).
    func sendWithoutReply(_ command: RESPCommand) {
        self.enqueue(.withoutReply(command))
    }

    /// Sends several commands together; the futures complete with their replies, in order.
    public func sendPipelined(_ commands: [RESPCommand]) -> [EventLoopFuture<RESPValue>] {
        commands.map { self.sendNow($0) }
    }

    /// `PUBLISH channel payload` without a ``RESPCommand`` or a future of its own: `reply` is completed with the
    /// reply (the number of receivers, or `()`), or failed.
    func publishNow(_ payload: ByteBuffer, to channel: String, sharded: Bool = false, reply: PublishReply) {
        self.enqueue(.publish(channel: channel, payload: payload, sharded: sharded, reply: reply))
    }

    /// Runs `script` with `EVALSHA`; the first use on this connection is preceded by `SCRIPT LOAD`, pipelined.
    func evaluateNow(_ script: RedisScript, keys: [ByteBuffer], arguments: [ByteBuffer]) -> EventLoopFuture<RESPValue> {
        let call = RESPCommand(
            "EVALSHA", [ByteBuffer(string: script.sha1), ByteBuffer(string: String(keys.count))] + keys + arguments)
        let promise = self.eventLoop.makePromise(of: RESPValue.self)
        self.enqueue(.command(call, promise), using: script)
        return promise.futureResult
    }

    /// Runs a script call as encoded (`EVALSHA`, loaded first as above); `completion` completes when it has run
    /// (`NOSCRIPT` is answered by sending it again with the source, on the connection's loop).
    func evaluateNow(_ call: RedisScriptCall, completion: EventLoopPromise<Void>?) {
        self.enqueue(.script(call, completion, withSource: false), using: call.script)
    }

    /// The call after `ASKING` (a slot being migrated), as `EVAL` with the source: `ASKING` holds for the next command
    /// only, so no `SCRIPT LOAD` may come between.
    func evaluateAsking(_ call: RedisScriptCall, completion: EventLoopPromise<Void>?) {
        let asking = self.eventLoop.makePromise(of: RESPValue.self)
        // Its failure shows in the call's reply (MOVED or ASK again), which the caller handles.
        asking.futureResult.whenFailure { _ in }
        let requests = [
            RedisRequest.command(RESPCommand("ASKING"), asking), .script(call, completion, withSource: true),
        ]
        guard self.budget.admit(requests[1].size) else { return requests.forEach { $0.fail(self.budgetSpent()) } }
        self.budget.forceAdmit(requests[0].size)
        let needsDrain = self.outbox.withLockedValue { outbox in
            let wasEmpty = outbox.requests.isEmpty
            outbox.requests += requests
            return wasEmpty
        }
        if needsDrain { self.scheduleDrain() }
    }

    /// Queues a request that runs `script`, with `SCRIPT LOAD` ahead of it if this connection has not loaded it.
    private func enqueue(_ request: RedisRequest, using script: RedisScript) {
        guard self.budget.admit(request.size) else { return request.fail(self.budgetSpent()) }
        let needsDrain = self.outbox.withLockedValue { outbox in
            let wasEmpty = outbox.requests.isEmpty
            if outbox.loadedScripts.insert(script.sha1).inserted {
                let loaded = self.eventLoop.makePromise(of: RESPValue.self)
                // Its failure shows in the EVALSHA's reply (NOSCRIPT), which is answered by EVAL.
                loaded.futureResult.whenFailure { _ in }
                let load = RedisRequest.command(RESPCommand("SCRIPT", "LOAD", script.source), loaded)
                // Counted even past the budget: the EVALSHA behind it was admitted and needs it.
                self.budget.forceAdmit(load.size)
                outbox.requests.append(load)
            }
            outbox.requests.append(request)
            return wasEmpty
        }
        if needsDrain { self.scheduleDrain() }
    }

    /// Forgets that `script` is loaded here (Redis said NOSCRIPT): its next use loads it again.
    func forgetScript(_ script: RedisScript) {
        self.outbox.withLockedValue { _ = $0.loadedScripts.remove(script.sha1) }
    }

    private func budgetSpent() -> RedisError {
        self.counters.refusedForBudget.wrappingAdd(1, ordering: .relaxed)
        return RedisError(
            .tooManyPendingCommands,
            "over \(self.configuration.maxPendingBytes) bytes of commands are already waiting for Redis")
    }

    private func enqueue(_ request: RedisRequest) {
        guard self.budget.admit(request.size) else { return request.fail(self.budgetSpent()) }
        let needsDrain = self.outbox.withLockedValue { outbox in
            let wasEmpty = outbox.requests.isEmpty
            outbox.requests.append(request)
            return wasEmpty
        }
        if needsDrain { self.scheduleDrain() }
    }

    private func scheduleDrain() {
        // One task drains everything queued by the time it runs: one write, one flush (one syscall) for the batch.
        self.eventLoop.execute {
            let batch = self.outbox.withLockedValue { outbox in
                defer { outbox.requests.removeAll(keepingCapacity: true) }
                return outbox.requests
            }
            let written = self.eventLoop.makePromise(of: Void.self)
            written.futureResult.whenFailure { error in
                // The handler never took the batch (the channel is closed): its replies are ours to fail.
                let failure =
                    error as? RedisError ?? RedisError(.connectionClosed, "the connection is closed (\(error))")
                for request in batch {
                    self.budget.release(request.size)
                    request.fail(failure)
                }
            }
            self.channel.writeAndFlush(RedisBatch(requests: batch), promise: written)
        }
    }

    /// Closes the connection; pending commands fail with ``RedisError/Kind/connectionClosed``.
    public func close() async {
        try? await self.channel.close()
    }
}
