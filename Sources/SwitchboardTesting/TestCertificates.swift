import Foundation
public import NIOSSL

/// A test CA and a server certificate it signed (for `localhost` and 127.0.0.1), made with the `openssl` command in a
/// temporary directory: real certificates for real TLS handshakes, never committed. ``makeServer(named:)`` makes
/// more server certificates from the same CA (a reload's new certificate).
public struct TestCertificates: Sendable {
    /// The directory holding the files.
    public let directory: String
    /// The CA's certificate (PEM): what a client trusts.
    public var caPath: String { self.directory + "/ca.pem" }
    /// The server's certificate chain (PEM).
    public var certificatePath: String { self.directory + "/server.pem" }
    /// The server's private key (PEM).
    public var keyPath: String { self.directory + "/server.key" }

    /// Makes a CA and a server certificate.
    ///
    /// - Throws: When `openssl` is missing or fails (its output in the error).
    public init() throws {
        self.directory =
            FileManager.default.temporaryDirectory
            .appendingPathComponent("switchboard-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        try self.openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
            "-subj", "/CN=Switchboard test CA", "-keyout", "ca.key", "-out", "ca.pem")
        try self.makeServer(named: "server")
    }

    /// Makes `<name>.pem` and `<name>.key`, a certificate for `localhost` and 127.0.0.1 signed by the CA.
    public func makeServer(named name: String) throws {
        try self.openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "\(name).key", "-out", "\(name).csr")
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(
            toFile: self.directory + "/san.ext", atomically: true, encoding: .utf8)
        try self.openssl(
            "x509", "-req", "-in", "\(name).csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days",
            "2", "-extfile", "san.ext", "-out", "\(name).pem")
    }

    /// A client context that trusts only this CA (and checks the server's name, `localhost`).
    public func clientContext() throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file(self.caPath)
        configuration.applicationProtocols = ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }

    /// Removes the directory.
    public func remove() {
        try? FileManager.default.removeItem(atPath: self.directory)
    }

    private func openssl(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        process.currentDirectoryURL = URL(fileURLWithPath: self.directory)
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CocoaError(
                .executableLoad,
                userInfo: [NSLocalizedDescriptionKey: "openssl \(arguments.joined(separator: " ")): \(text)"])
        }
    }
}
