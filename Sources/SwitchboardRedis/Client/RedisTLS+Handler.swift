import NIOCore
import NIOSSL

extension RedisTLS {
    /// The client TLS handler for one connection. The files are read on each connection, so a reconnection picks up
    /// a renewed client certificate or CA.
    ///
    /// - Throws: ``RedisError`` naming the file that cannot be used.
    func makeHandler(host: String) throws -> NIOSSLClientHandler {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile = self.caFile {
            configuration.trustRoots = .file(caFile)
        }
        switch (self.certificateFile, self.keyFile) {
        case (let certificate?, let key?):
            do {
                configuration.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
                configuration.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
            } catch {
                throw RedisError(.connectionUnavailable, "cannot read the Redis client certificate or key: \(error)")
            }
        case (nil, nil):
            break
        default:
            throw RedisError(.connectionUnavailable, "a Redis client certificate needs both a certificate and a key")
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw RedisError(.connectionUnavailable, "cannot set up TLS to Redis: \(error)")
        }
        // An IP address is verified against the certificate's IP SANs; SNI carries host names only.
        let name = self.serverName ?? host
        let isAddress = (try? SocketAddress(ipAddress: name, port: 0)) != nil
        do {
            return try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : name)
        } catch {
            throw RedisError(.connectionUnavailable, "cannot set up TLS to Redis: \(error)")
        }
    }
}
