import Foundation
import NIOCore
import NIOSSL
import Switchboard
import SwitchboardLocks
import SwitchboardServer
import SwitchboardTesting
import Testing

/// The certificate the server showed on `client`'s connection.
private func peerCertificate(_ client: RawClient) async throws -> NIOSSLCertificate? {
    try await client.channel.nioSSL_peerCertificate().value()
}

@Suite("TLS", .timeLimit(.minutes(1)))
struct TLSTests {
    @Test("HTTPS: requests, keep-alive and a full hijack all go through TLS, verified against the test CA")
    func https() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        var configuration = testConfiguration()
        configuration.tls = try TLSCredentials(
            certificateChainPath: certificates.certificatePath, privateKeyPath: certificates.keyPath)
        let app = AnyApplication { request in
            if request.path == "/hijack" {
                let io = try await request.hijack()
                try await io.write("raw bytes, encrypted;")
                try await io.close()
                return Response()
            }
            return Response(body: .init(string: "secret \(request.path)"))
        }
        let context = try certificates.clientContext()
        try await withServer(app, configuration: configuration) { _, port in
            try await RawClient.withConnection(port: port, tls: context) { client in
                try await client.send("GET /one HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(try await client.readResponse().body == "secret /one")
                try await client.send("GET /two HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(try await client.readResponse().body == "secret /two", "keep-alive over TLS")
                try await client.send("GET /hijack HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(try await client.readToEnd() == "raw bytes, encrypted;")
            }
            // Plain HTTP to a TLS port gets no HTTP answer.
            try await RawClient.withConnection(port: port) { client in
                try await client.send("GET /one HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(try await !client.readToEnd().contains("secret"))
            }
        }
    }

    @Test("Reload: new connections get the new certificate, an open connection keeps working")
    func reload() async throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        let credentials = try TLSCredentials(
            certificateChainPath: certificates.certificatePath, privateKeyPath: certificates.keyPath)
        var configuration = testConfiguration()
        configuration.tls = credentials
        let app = AnyApplication { request in Response(body: .init(string: "ok \(request.path)")) }
        let context = try certificates.clientContext()
        let first = try NIOSSLCertificate.fromPEMFile(certificates.certificatePath)[0]
        try await withServer(app, configuration: configuration) { _, port in
            try await RawClient.withConnection(port: port, tls: context) { open in
                try await open.send("GET /before HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(try await open.readResponse().body == "ok /before")
                #expect(try await peerCertificate(open) == first)
                // A renewed certificate, written over the old files, as certbot or an operator would.
                try certificates.makeServer(named: "server")
                let renewed = try NIOSSLCertificate.fromPEMFile(certificates.certificatePath)[0]
                #expect(renewed != first)
                try credentials.reload()
                try await RawClient.withConnection(port: port, tls: context) { fresh in
                    try await fresh.send("GET /after HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    #expect(try await fresh.readResponse().body == "ok /after")
                    #expect(try await peerCertificate(fresh) == renewed)
                }
                try await open.send("GET /still HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(try await open.readResponse().body == "ok /still", "the open connection was not dropped")
            }
            // A broken file: the reload fails with the file's name, and the certificate in use stays.
            try "not a certificate".write(toFile: certificates.certificatePath, atomically: true, encoding: .utf8)
            #expect {
                try credentials.reload()
            } throws: { error in
                "\(error)".contains(certificates.certificatePath)
            }
            try await RawClient.withConnection(port: port, tls: context) { client in
                try await client.send("GET /later HTTP/1.1\r\nHost: localhost\r\n\r\n")
                #expect(try await client.readResponse().body == "ok /later")
            }
        }
    }

    @Test("A key that is not the certificate's is refused at start, naming both files")
    func mismatchedKey() throws {
        let certificates = try TestCertificates()
        defer { certificates.remove() }
        try certificates.makeServer(named: "other")
        #expect {
            try TLSCredentials(
                certificateChainPath: certificates.certificatePath,
                privateKeyPath: certificates.directory + "/other.key")
        } throws: { error in
            "\(error)".contains("other.key") && "\(error)".contains("server.pem")
        }
    }
}
