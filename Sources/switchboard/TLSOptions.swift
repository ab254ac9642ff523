import ArgumentParser
import Logging
import ServiceLifecycle
import SwitchboardServer
import UnixSignals

/// TLS for the public port.
struct TLSOptions: ParsableArguments {
    @Option(
        help: """
            Serve https:// and wss:// with this PEM certificate chain (the server's certificate first, then its \
            intermediates); needs --tls-key. SIGHUP reads both files again; open connections keep their certificate \
            (env SWITCHBOARD_TLS_CERT).
            """
    )
    var tlsCert: String?

    @Option(help: "The PEM private key of --tls-cert (env SWITCHBOARD_TLS_KEY).")
    var tlsKey: String?

    /// The credentials, read now; `nil` without a certificate. A missing half or an unreadable file is one line and
    /// exit code 64, before anything listens.
    func credentials() -> TLSCredentials? {
        let certificate = self.tlsCert ?? configured("SWITCHBOARD_TLS_CERT")
        let key = self.tlsKey ?? configured("SWITCHBOARD_TLS_KEY")
        switch (certificate, key) {
        case (nil, nil):
            return nil
        case (.some, nil):
            exitWithUsageError("--tls-cert needs --tls-key (the certificate's private key)")
        case (nil, .some):
            exitWithUsageError("--tls-key needs --tls-cert (the certificate chain)")
        case (let certificate?, let key?):
            do {
                return try TLSCredentials(certificateChainPath: certificate, privateKeyPath: key)
            } catch {
                exitWithUsageError("\(error)")
            }
        }
    }
}

/// Reads the certificate and key again on each SIGHUP (certbot's deploy hook, `systemctl reload`): new connections
/// get the new certificate; a reload that fails is logged and the certificate in use stays.
struct TLSReloader: Service {
    let credentials: TLSCredentials
    let logger: Logger

    func run() async throws {
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            do {
                try self.credentials.reload()
                self.logger.notice(
                    "TLS certificate reloaded", metadata: ["certificate": "\(self.credentials.certificateChainPath)"])
            } catch {
                self.logger.error("TLS certificate not reloaded; the one in use stays", metadata: ["error": "\(error)"])
            }
        }
    }
}
