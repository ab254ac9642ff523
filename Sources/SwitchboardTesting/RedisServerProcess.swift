public import Foundation
import SwitchboardLocks

#if canImport(Glibc)
    import Glibc
#endif

/// A real `redis-server` for tests: its own free port on 127.0.0.1, its own temporary directory, no persistence.
///
/// Tests that need Redis use ``RedisServerProcess/testTrait``'s condition: they are skipped with a printed reason
/// when `redis-server` is not installed, unless `SWITCHBOARD_REQUIRE_REDIS=1` (as in CI) makes that a failure.
public final class RedisServerProcess: Sendable {
    private let process = Locked<Process?>(nil)
    private let chosenPort = Locked(0)
    /// The port it listens on (kept across restarts).
    public var port: Int { self.chosenPort.withLock { $0 } }
    /// Its working directory.
    public let directory: URL
    /// TLS on ``port`` instead of plain TCP (and no plain port at all).
    private let tls: TLS?

    /// What a TLS server uses: its certificate and the CA it checks clients' certificates against.
    public struct TLS: Sendable {
        public var certificates: TestCertificates
        /// Whether a client must present a certificate signed by the CA (`tls-auth-clients yes`).
        public var requiresClientCertificates: Bool

        public init(certificates: TestCertificates, requiresClientCertificates: Bool) {
            self.certificates = certificates
            self.requiresClientCertificates = requiresClientCertificates
        }
    }

    /// The `redis-server` executable, if installed.
    public static let executable: String? = {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates =
            path.split(separator: ":").map { "\($0)/redis-server" } + [
                "/usr/bin/redis-server", "/usr/sbin/redis-server",
            ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }()

    /// Whether Redis tests run: `redis-server` is installed, or CI requires them (and then fails without it).
    public static var isEnabled: Bool {
        executable != nil || ProcessInfo.processInfo.environment["SWITCHBOARD_REQUIRE_REDIS"] == "1"
    }

    /// Why Redis tests are skipped.
    public static let skipReason =
        "redis-server is not installed: Redis tests skipped (SWITCHBOARD_REQUIRE_REDIS=1 makes this a failure)"

    /// Starts `redis-server` and waits until it accepts connections.
    ///
    /// Everything here waits by sleeping the task, never by blocking a thread: tests run on the cooperative pool,
    /// which has one thread per core.
    ///
    /// - Parameter tls: Serve TLS only (`rediss://`), with these certificates.
    public init(tls: TLS? = nil) async throws {
        self.tls = tls
        guard let executable = Self.executable else {
            throw RedisServerError("redis-server is not installed, and SWITCHBOARD_REQUIRE_REDIS=1 requires it")
        }
        self.directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("switchboard-redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        // A free port can be taken by another process between our look and redis-server's bind (tests run in
        // parallel and open connections from ephemeral ports): then another port.
        for attempt in 1...5 {
            let port = try Self.freePort()
            self.chosenPort.withLock { $0 = port }
            do {
                try await self.launch(executable)
                return
            } catch let error as RedisServerError
                where attempt < 5 && error.description.contains("Address already in use")
            {
                continue
            }
        }
    }

    /// Kills the server at once (SIGKILL: no goodbye to clients) and waits until it is gone.
    public func kill() async {
        guard let process = self.takeProcess() else { return }
        process.terminate()  // the watchdog SIGKILLs redis-server, waits for it, and exits
        while process.isRunning { try? await Task.sleep(for: .milliseconds(5)) }
    }

    /// Starts it again on the same port (after ``kill()``).
    public func restart() async throws {
        try await self.launch(Self.executable!)
    }

    /// Freezes the server (SIGSTOP): its connections stay open but nothing is answered, as with a hung Redis.
    public func pause() throws {
        try self.signal(SIGSTOP)
    }

    /// Lets a paused server run again (SIGCONT).
    public func resume() throws {
        try self.signal(SIGCONT)
    }

    private func signal(_ signal: Int32) throws {
        let file = self.directory.appendingPathComponent("redis.pid")
        guard let text = try? String(contentsOf: file, encoding: .utf8),
            let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines))
        else { throw RedisServerError("redis-server wrote no pid file") }
        guard Glibc.kill(pid, signal) == 0 else { throw RedisServerError("kill(\(pid), \(signal)) failed") }
    }

    /// Kills the server without waiting and removes its directory.
    public func stop() {
        self.takeProcess()?.terminate()
        try? FileManager.default.removeItem(at: self.directory)
    }

    deinit {
        self.stop()
    }

    private func takeProcess() -> Process? {
        self.process.withLock { process in
            defer { process = nil }
            return process
        }
    }

    private func launch(_ executable: String) async throws {
        let log = self.directory.appendingPathComponent("redis.log")
        try? FileManager.default.removeItem(at: log)
        // A shell watchdog runs redis-server: it kills redis-server (SIGKILL, like a crash) when told to with
        // SIGTERM, and also when the test process is gone, so a crashed or killed test run leaves no server behind.
        let watchdog = """
            parent=$1; shift; "$@" & child=$!
            trap 'kill -9 "$child" 2>/dev/null; wait "$child"; exit 0' TERM
            while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.2; done
            kill -9 "$child" 2>/dev/null; wait "$child"
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        let redisArguments =
            [
                "--port", String(self.port), "--bind", "127.0.0.1", "--dir", self.directory.path,
                "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", log.path,
                "--pidfile", self.directory.appendingPathComponent("redis.pid").path,
            ] + self.tlsArguments
        process.arguments = ["-c", watchdog, "sh", String(getpid()), executable] + redisArguments
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process.withLock { $0 = process }
        // "Ready to accept connections" is the line redis-server logs once it listens.
        for _ in 0..<500 {
            if let text = try? String(contentsOf: log, encoding: .utf8), text.contains("Ready to accept connections") {
                return
            }
            guard process.isRunning else {
                let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw RedisServerError("redis-server exited at start: \(text.suffix(500))")
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw RedisServerError("redis-server did not become ready within 5 s on port \(self.port)")
    }

    /// TLS on the port, and the plain port off (later arguments win).
    private var tlsArguments: [String] {
        guard let tls = self.tls else { return [] }
        return [
            "--tls-port", String(self.port), "--port", "0",
            "--tls-cert-file", tls.certificates.certificatePath, "--tls-key-file", tls.certificates.keyPath,
            "--tls-ca-cert-file", tls.certificates.caPath,
            "--tls-auth-clients", tls.requiresClientCertificates ? "yes" : "no",
        ]
    }

    /// A port that is free right now, from 20000-31999: below the kernel's ephemeral range (32768 and up), so the
    /// outgoing connections of other tests cannot take it before redis-server binds it.
    private static func freePort() throws -> Int {
        for _ in 0..<100 {
            let port = Int.random(in: 20000..<32000)
            if try self.canBind(port) { return port }
        }
        throw RedisServerError("could not find a free port in 20000-31999")
    }

    private static func canBind(_ port: Int) throws -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw RedisServerError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let length = socklen_t(MemoryLayout<sockaddr_in>.size)
        return withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in bind(fd, pointer, length) == 0 }
        }
    }
}

/// A test Redis server that could not be started.
public struct RedisServerError: Error, CustomStringConvertible {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
