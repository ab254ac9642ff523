public import NIOCore

/// Settings of a ``Server``. Every limit on what a client controls has a safe default.
public struct ServerConfiguration: Sendable {
    /// The address to listen on; `127.0.0.1` by default.
    public var host: String
    /// The port to listen on; `0` picks a free one (see ``Server/listeningAddress()``).
    public var port: Int
    /// The listen backlog.
    public var backlog: Int32
    /// The most bytes of a request head: request line plus header fields. Larger heads get `431`.
    public var maxHeadSize: Int
    /// The most header fields in a request. More get `431`.
    public var maxHeaderCount: Int
    /// The most bytes of a request body the server reads for the app. Larger bodies get `413`. Apps can
    /// set a smaller limit per request with ``Switchboard/RequestBody/collect(upTo:)``.
    public var maxBodySize: Int
    /// How long a keep-alive connection may stay idle between requests.
    public var idleTimeout: TimeAmount
    /// How long a client may take to send a whole request head once its first byte arrived.
    public var headReadTimeout: TimeAmount
    /// How long the server waits for the next bytes of a request body the app is reading (nginx's
    /// `client_body_timeout`); past it the read fails with ``Switchboard/RequestBodyError/timedOut`` (`408`) and the
    /// connection closes, so a client trickling a body cannot hold a connection and its app task.
    public var bodyReadTimeout: TimeAmount
    /// How long a whole request body may take, from the app's first read (a body trickled a byte at a time within
    /// ``bodyReadTimeout`` still ends here): `408`, and the connection closes.
    public var bodyDeadline = TimeAmount.seconds(60)
    /// How long a response may wait for a client that does not read before the connection is closed (Go's
    /// `WriteTimeout`, counted from when the socket stopped taking bytes). Hijacked connections are not timed.
    public var writeTimeout: TimeAmount
    /// The most connections open at once, hijacked ones included; past it a new connection is answered `503` with
    /// `Retry-After` and closed, before any app sees it (so a WebSocket handshake never gets its `101`). `nil`, the
    /// default, derives it from the process's open-file limit, keeping 64 descriptors for everything else (Redis,
    /// files), so the server refuses politely instead of running out of descriptors.
    public var maxConnections: Int?
    /// The most connections open at once from one IP address; past it, `503` as for ``maxConnections``. `nil`, the
    /// default, sets no such limit: behind a load balancer or proxy every client shares the proxy's address.
    public var maxConnectionsPerAddress: Int?
    /// Whether loopback peers (127.0.0.0/8, `::1`) are outside ``maxConnectionsPerAddress``: on the server's own
    /// machine they are a local proxy, tools or tests. `false` by default.
    public var exemptsLoopbackFromAddressCap = false
    /// New connections per second from one IP address, after a burst of twice as many (WebSocket handshakes
    /// included: each is a connection); past it, `503` as for ``maxConnections``. `nil`, the default, sets no
    /// such limit, for the same reason as ``maxConnectionsPerAddress``.
    public var connectionRatePerAddress: Double?
    /// The `Server` header value, or `nil` for none.
    public var serverName: String?
    /// Whether apps run on the connection's event loop (the default, and the fast path: no thread hop
    /// between socket and app). Turn it off for apps that block the thread, which they should not.
    public var runsApplicationOnEventLoop: Bool
    /// TLS for every connection (`https`, `wss`), or `nil` for plain TCP.
    public var tls: TLSCredentials?
    /// Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed: a request from one of them gets the
    /// forwarded client as its ``Switchboard/Request/remoteAddress`` and the forwarded ``Switchboard/Request/scheme``,
    /// and ``connectionRatePerAddress`` counts that client's requests instead of the proxy's connections (the
    /// per-address connection cap does not apply to a proxy, which carries many clients). Empty by default: headers
    /// anyone can write are ignored.
    public var trustedProxies: [IPAddressRange] = []

    /// Creates a configuration; every parameter has a safe default.
    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        backlog: Int32 = 1024,
        maxHeadSize: Int = 16 * 1024,
        maxHeaderCount: Int = 100,
        maxBodySize: Int = 8 * 1024 * 1024,
        idleTimeout: TimeAmount = .seconds(60),
        headReadTimeout: TimeAmount = .seconds(10),
        bodyReadTimeout: TimeAmount = .seconds(30),
        writeTimeout: TimeAmount = .seconds(30),
        maxConnections: Int? = nil,
        maxConnectionsPerAddress: Int? = nil,
        connectionRatePerAddress: Double? = nil,
        serverName: String? = "switchboard",
        runsApplicationOnEventLoop: Bool = true,
        tls: TLSCredentials? = nil,
        trustedProxies: [IPAddressRange] = []
    ) {
        self.trustedProxies = trustedProxies
        self.host = host
        self.port = port
        self.backlog = backlog
        self.maxHeadSize = maxHeadSize
        self.maxHeaderCount = maxHeaderCount
        self.maxBodySize = maxBodySize
        self.idleTimeout = idleTimeout
        self.headReadTimeout = headReadTimeout
        self.bodyReadTimeout = bodyReadTimeout
        self.writeTimeout = writeTimeout
        self.maxConnections = maxConnections
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
        self.connectionRatePerAddress = connectionRatePerAddress
        self.serverName = serverName
        self.runsApplicationOnEventLoop = runsApplicationOnEventLoop
        self.tls = tls
    }
}
