import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SwitchboardLocks

/// One host's connections: those idle, how many are open or opening, and the requests waiting for one.
final class HostPool: Sendable {
    private struct Waiter {
        var id: Int
        var promise: EventLoopPromise<PooledConnection>
        /// The request's deadline: a connection opened for it must be open by then.
        var until: NIODeadline
    }

    private struct State {
        var idle: [PooledConnection] = []
        /// Connections open or opening, busy or idle.
        var open = 0
        var waiters = CircularBuffer<Waiter>()
        var nextWaiter = 0
        var isShutDown = false
    }

    /// What a request gets from ``acquire``: a connection at once, one to open, or a place in the queue.
    private enum Acquisition {
        case idle(PooledConnection)
        case connect
        case wait(EventLoopFuture<PooledConnection>, id: Int)
        case refuse(HTTPClientError)
    }

    let key: PoolKey
    private let configuration: HTTPClient.Configuration
    private let group: any EventLoopGroup
    /// The client's count of connections over all hosts.
    private let slots: ConnectionSlots
    /// For offering a freed place to another host; weak, as the client holds its pools (and may be gone first: a
    /// connection closing late then finds no one to offer it to).
    private weak let client: HTTPClient?
    private let tlsContext: NIOSSLContext?
    private let state = Locked(State())

    init(key: PoolKey, client: HTTPClient, tlsContext: NIOSSLContext?) {
        self.key = key
        self.client = client
        self.configuration = client.configuration
        self.group = client.group
        self.slots = client.slots
        self.tlsContext = tlsContext
    }

    var load: (connections: Int, inFlight: Int, waiting: Int) {
        self.state.withLock { ($0.open, $0.open - $0.idle.count, $0.waiters.count) }
    }

    func send(_ request: HTTPClientRequest, deadline: TimeAmount) async throws -> HTTPClient.Response {
        let eventLoop = self.group.next()
        let until = NIODeadline.now() + deadline
        let connection = try await self.acquire(on: eventLoop, until: until, deadline: deadline)
        do {
            let response = try await connection.exchange(request, until: until, deadline: deadline)
            self.release(connection, reusable: response.keepAlive)
            return response.response
        } catch {
            self.release(connection, reusable: false)
            throw error
        }
    }

    private func acquire(
        on eventLoop: any EventLoop, until: NIODeadline, deadline: TimeAmount
    ) async throws -> PooledConnection {
        let configuration = self.configuration
        while true {
            let acquisition = self.state.withLock { state -> Acquisition in
                if state.isShutDown { return .refuse(.shutDown) }
                if let connection = state.idle.popLast() { return .idle(connection) }
                // A connection of its own, within the host's cap and the client's (checked last: it takes a place).
                if state.open < configuration.maxConnectionsPerHost, self.slots.take() {
                    state.open += 1
                    return .connect
                }
                guard state.waiters.count < configuration.maxWaitingPerHost else { return .refuse(.busy) }
                state.nextWaiter += 1
                let promise = eventLoop.makePromise(of: PooledConnection.self)
                state.waiters.append(Waiter(id: state.nextWaiter, promise: promise, until: until))
                return .wait(promise.futureResult, id: state.nextWaiter)
            }
            switch acquisition {
            case .refuse(let error):
                throw error
            case .idle(let connection):
                // Closed by the server while idle: count it out and try again.
                guard connection.take() else {
                    self.discard()
                    continue
                }
                return connection
            case .connect:
                do {
                    return try await self.connect(on: eventLoop, deadline: until - .now())
                } catch {
                    self.discard()
                    throw error
                }
            case .wait(let future, let id):
                let timer = eventLoop.scheduleTask(deadline: until) { self.expire(waiter: id, deadline: deadline) }
                defer { timer.cancel() }
                return try await future.value()
            }
        }
    }

    /// The connection's request is done: it serves the next waiter, or waits idle; or it is closed and its place
    /// goes to the next waiter.
    private func release(_ connection: PooledConnection, reusable: Bool) {
        if reusable, connection.isActive {
            let waiter = self.state.withLock { state -> Waiter? in
                if let waiter = state.waiters.popFirst() { return waiter }
                if !state.isShutDown { state.idle.append(connection) }
                return nil
            }
            if let waiter {
                _ = connection.take()
                waiter.promise.succeed(connection)
                return
            }
            // Another host's requests wait for a place under the client's cap: this idle connection gives its up.
            guard self.client?.isWaiting(besides: self) == true else {
                connection.idle(for: self.configuration.idleTimeout) { [weak self] in self?.closedWhileIdle($0) }
                return
            }
            let wasIdle = self.state.withLock { state -> Bool in
                guard let index = state.idle.firstIndex(where: { $0 === connection }) else { return false }
                state.idle.remove(at: index)
                return true
            }
            guard wasIdle else { return }
        }
        // The place goes to the next request only once the descriptor is closed: `close` from another thread only
        // asks the connection's event loop, and a loaded loop would otherwise let the next connection open first, so
        // the host would hold more descriptors than its cap (a hung backend: 50 at once under TSan for a cap of 16).
        connection.close().whenComplete { _ in self.discard() }
    }

    /// A connection went (closed, failed, never opened): its place goes to the next waiter, who opens one; without
    /// one, back to the client (for another host's waiters).
    private func discard() {
        let waiter = self.state.withLock { state -> Waiter? in
            guard let waiter = state.waiters.popFirst() else {
                state.open -= 1
                return nil
            }
            return waiter
        }
        guard let waiter else {
            self.slots.give()
            self.client?.offerFreedSlot()
            return
        }
        self.open(for: waiter)
    }

    /// Whether requests wait here.
    var hasWaiters: Bool { self.state.withLock { !$0.waiters.isEmpty } }

    /// Opens a connection for the first waiter, if there is one and a place for it here and in the client.
    func connectForWaiter() -> Bool {
        let configuration = self.configuration
        let waiter = self.state.withLock { state -> Waiter? in
            guard !state.waiters.isEmpty, state.open < configuration.maxConnectionsPerHost,
                self.slots.take()
            else { return nil }
            state.open += 1
            return state.waiters.popFirst()
        }
        guard let waiter else { return false }
        self.open(for: waiter)
        return true
    }

    /// Opens a connection (whose place is counted) for `waiter`.
    private func open(for waiter: Waiter) {
        let eventLoop = waiter.promise.futureResult.eventLoop
        let connecting = eventLoop.makeFutureWithTask {
            try await self.connect(on: eventLoop, deadline: waiter.until - .now())
        }
        connecting.whenFailure { _ in self.discard() }
        connecting.cascade(to: waiter.promise)
    }

    private func closedWhileIdle(_ connection: PooledConnection) {
        let removed = self.state.withLock { state -> Bool in
            guard let index = state.idle.firstIndex(where: { $0 === connection }) else { return false }
            state.idle.remove(at: index)
            return true
        }
        if removed { self.discard() }
    }

    private func expire(waiter id: Int, deadline: TimeAmount) {
        let waiter = self.state.withLock { state -> Waiter? in
            guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: index)
        }
        waiter?.promise.fail(HTTPClientError.timeout(deadline))
    }

    private func connect(on eventLoop: any EventLoop, deadline: TimeAmount) async throws -> PooledConnection {
        let (key, tlsContext, limit) = (self.key, self.tlsContext, self.configuration.maxResponseBytes)
        let channel = try await ClientBootstrap(group: eventLoop)
            .connectTimeout(max(deadline, .milliseconds(1)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if key.isTLS, let tlsContext {
                        let handler = try NIOSSLClientHandler(
                            context: tlsContext, serverHostname: key.host.contains(":") ? nil : key.host)
                        try channel.pipeline.syncOperations.addHandler(handler)
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseHandler(maxBodyBytes: limit))
                }
            }
            .connect(host: key.host, port: key.port).value()
        return try await PooledConnection.make(channel)
    }

    func shutdown() {
        let (idle, waiters) = self.state.withLock { state in
            state.isShutDown = true
            defer {
                state.idle = []
                state.waiters = []
            }
            return (state.idle, Array(state.waiters))
        }
        for connection in idle { _ = connection.close() }
        for waiter in waiters { waiter.promise.fail(HTTPClientError.shutDown) }
    }
}
