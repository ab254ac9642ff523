import NIOConcurrencyHelpers
public import NIOSSL

/// A server's certificate chain and private key, read from PEM files, and the TLS context made from them; reloadable
/// while the server runs (``reload()``, on SIGHUP in the executable): new connections get the new certificate, open
/// ones keep theirs.
///
/// TLS 1.2 and 1.3 only, and ALPN `http/1.1` (WebSocket needs HTTP/1.1's upgrade).
public final class TLSCredentials: Sendable {
    /// The PEM file with the server's certificate first, then its intermediates.
    public let certificateChainPath: String
    /// The PEM file with the certificate's private key.
    public let privateKeyPath: String
    private let current: NIOLockedValueBox<NIOSSLContext>

    /// Reads the files and makes a context.
    ///
    /// - Throws: ``TLSCredentialsError`` saying which file is wrong and why.
    public init(certificateChainPath: String, privateKeyPath: String) throws(TLSCredentialsError) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.current = NIOLockedValueBox(
            try Self.makeContext(certificateChainPath: certificateChainPath, privateKeyPath: privateKeyPath))
    }

    /// The context for a new connection.
    public var context: NIOSSLContext { self.current.withLockedValue { $0 } }

    /// Reads the files again; from now on new connections use what they hold.
    ///
    /// - Throws: ``TLSCredentialsError``; the context in use then stays.
    public func reload() throws(TLSCredentialsError) {
        let context = try Self.makeContext(
            certificateChainPath: self.certificateChainPath, privateKeyPath: self.privateKeyPath)
        self.current.withLockedValue { $0 = context }
    }

    private static func makeContext(
        certificateChainPath: String, privateKeyPath: String
    ) throws(TLSCredentialsError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(certificateChainPath)
        } catch {
            throw TLSCredentialsError("cannot read the certificate chain \(certificateChainPath): \(error)")
        }
        guard !chain.isEmpty else {
            throw TLSCredentialsError("\(certificateChainPath) holds no PEM certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: privateKeyPath, format: .pem)
        } catch {
            throw TLSCredentialsError("cannot read the private key \(privateKeyPath): \(error)")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.applicationProtocols = ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            // Most often the key is not the certificate's.
            throw TLSCredentialsError(
                "cannot use \(certificateChainPath) with \(privateKeyPath) (is the key the certificate's?): \(error)")
        }
    }
}

/// Why TLS credentials could not be loaded, naming the file.
public struct TLSCredentialsError: Error, CustomStringConvertible, Sendable {
    public let description: String

    init(_ description: String) {
        self.description = description
    }
}
