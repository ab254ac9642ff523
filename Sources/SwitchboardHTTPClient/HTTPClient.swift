public import Logging
public import NIOCore
public import NIOHTTP1
import NIOPosix
import NIOSSL
public import ServiceLifecycle
import SwitchboardLocks

/// The node's one HTTP client, for what it asks of other servers: the app's backend (hooks), webhook receivers, an
/// identity provider's keys (JWKS). HTTP/1.1 over keep-alive connections pooled per host, with a cap on each host's
/// requests in flight and a bounded wait for a free connection, every request within one deadline (waiting,
/// connecting, TLS, the exchange).
///
/// Bounded in everything: connections in all (``Configuration/maxConnections``, within the 64 descriptors the server
/// keeps aside from client connections) and per host, waiters per host (past the wait queue a request fails at once with
/// ``HTTPClientError/busy``), response bodies (``Configuration/maxResponseBytes``), idle connections (closed after
/// ``Configuration/idleTimeout``). A request whose deadline passes mid-exchange closes its connection (its answer
/// could still come) and fails with ``HTTPClientError/timeout``.
///
/// Why not async-http-client: its debug build added about a minute to each of CI's three builds, with HTTP/2, SOCKS,
/// compression and transport services this client never uses (docs/DEVELOPMENT.md).
public final class HTTPClient: Service, Sendable {
    /// How much the client may hold per host.
    public struct Configuration: Sendable {
        /// Requests in flight per host (each on a connection of its own).
        public var maxConnectionsPerHost = 16
        /// Connections open or opening over all hosts: the server keeps 64 descriptors apart from its client
        /// connections (``SwitchboardServer/ServerConfiguration/maxConnections``), and this client stays within them.
        public var maxConnections = 48
        /// Requests waiting for a connection per host; past it a request fails at once.
        public var maxWaitingPerHost = 256
        /// How long a connection with nothing to do stays open.
        public var idleTimeout = TimeAmount.seconds(30)
        /// The largest response body read; a longer one fails the request.
        public var maxResponseBytes = 1 << 20

        public init() {}
    }

    /// An answer.
    public struct Response: Sendable {
        public var status: Int
        public var headers: HTTPHeaders
        public var body: ByteBuffer
    }

    let configuration: Configuration
    let group: any EventLoopGroup
    let logger: Logger
    private let tls: Result<NIOSSLContext, any Error>
    private let pools = Locked<[PoolKey: HostPool]>([:])
    /// Connections open or opening, over all hosts.
    let slots: ConnectionSlots

    /// - Parameters:
    ///   - group: Where the connections live.
    ///   - logger: Where connection failures are logged (debug).
    public init(configuration: Configuration = .init(), group: any EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.slots = ConnectionSlots(limit: configuration.maxConnections)
        self.group = group
        self.logger = logger
        // The system's trust roots, made once; if they cannot be, https requests fail with the reason.
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        self.tls = Result { try NIOSSLContext(configuration: tls) }
    }

    /// Sends a request and returns the answer.
    ///
    /// - Parameters:
    ///   - deadline: For the whole request: the wait for a connection, connecting, the exchange.
    /// - Throws: ``HTTPClientError``: busy (the host's queue is full), timeout, a connection or protocol failure, a
    ///   body over the limit.
    public func send(
        _ method: HTTPMethod, _ url: OutboundURL, headers: HTTPHeaders = [:], body: ByteBuffer? = nil,
        deadline: TimeAmount
    ) async throws -> Response {
        let tlsContext: NIOSSLContext?
        if url.isTLS {
            switch self.tls {
            case .success(let context): tlsContext = context
            case .failure(let error): throw HTTPClientError("TLS is unavailable: \(error)")
            }
        } else {
            tlsContext = nil
        }
        var head = HTTPRequestHead(version: .http1_1, method: method, uri: url.target, headers: headers)
        head.headers.replaceOrAdd(name: "Host", value: url.hostHeader)
        if let body { head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes)) }
        let key = PoolKey(host: url.host, port: url.port, isTLS: url.isTLS)
        let pool = self.pools.withLock { pools in
            if let pool = pools[key] { return pool }
            let pool = HostPool(key: key, client: self, tlsContext: tlsContext)
            pools[key] = pool
            return pool
        }
        return try await pool.send(HTTPClientRequest(head: head, body: body), deadline: deadline)
    }

    /// What every host's pool holds now: connections open, requests in flight, requests waiting.
    public var load: (connections: Int, inFlight: Int, waiting: Int) {
        let pools = self.pools.withLock { Array($0.values) }
        return pools.reduce((0, 0, 0)) { total, pool in
            let load = pool.load
            return (total.0 + load.connections, total.1 + load.inFlight, total.2 + load.waiting)
        }
    }

    /// Whether a host other than `pool` has requests waiting (for a place under the client's cap, or its own).
    func isWaiting(besides pool: HostPool) -> Bool {
        guard self.slots.isFull else { return false }
        let pools = self.pools.withLock { Array($0.values) }
        return pools.contains { $0 !== pool && $0.hasWaiters }
    }

    /// A connection's place was given back: offered to a host whose requests wait for one.
    func offerFreedSlot() {
        let pools = self.pools.withLock { Array($0.values) }
        for pool in pools where pool.connectForWaiter() { return }
    }

    /// Runs until graceful shutdown, then closes the idle connections: start it before what uses the client, so it
    /// stops after them (a webhook dispatcher draining its queue at shutdown still sends).
    public func run() async throws {
        try? await gracefulShutdown()
        self.shutdown()
    }

    /// Closes every idle connection and fails every waiting request; requests in flight finish.
    public func shutdown() {
        let pools = self.pools.withLock { pools in
            defer { pools = [:] }
            return Array(pools.values)
        }
        for pool in pools { pool.shutdown() }
    }
}

/// Why a request failed.
public struct HTTPClientError: Error, Sendable, Hashable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }

    /// The host's connections and wait queue are full.
    public static let busy = HTTPClientError("too many requests to this host at once")
    /// The client was shut down.
    public static let shutDown = HTTPClientError("the HTTP client was shut down")

    static func timeout(_ deadline: TimeAmount) -> HTTPClientError {
        HTTPClientError("no answer within \(deadline.nanoseconds / 1_000_000) ms")
    }
}

struct PoolKey: Hashable, Sendable {
    var host: String
    var port: Int
    var isTLS: Bool
}

struct HTTPClientRequest: Sendable {
    var head: HTTPRequestHead
    var body: ByteBuffer?
}

/// Connections open or opening over all of a client's hosts, under its cap.
final class ConnectionSlots: Sendable {
    private let limit: Int
    private let open = Locked(0)

    init(limit: Int) {
        self.limit = limit
    }

    /// Takes a place for a new connection; `false` if there is none.
    func take() -> Bool {
        self.open.withLock { open in
            guard open < self.limit else { return false }
            open += 1
            return true
        }
    }

    /// Gives a place back.
    func give() {
        self.open.withLock { $0 -= 1 }
    }

    var isFull: Bool { self.open.withLock { $0 >= self.limit } }
}
