import HTTPTypes
import NIOHTTP1
import Switchboard

/// Turns a decoded request head into the app's types, enforcing what the decoder leaves to us.
struct RequestHeadParser {
    struct Parsed {
        var method: HTTPRequest.Method
        var version: Switchboard.HTTPVersion
        var headers: HTTPFields
        var contentLength: Int?
        var expectsContinue: Bool
    }

    /// A head the server refuses, with the status to answer.
    struct Refusal: Error, Equatable {
        var status: HTTPResponse.Status
        var reason: String
    }

    let maxHeaderCount: Int
    let maxBodySize: Int

    func parse(_ head: HTTPRequestHead) throws(Refusal) -> Parsed {
        guard head.version.major == 1 else {
            throw Refusal(status: .httpVersionNotSupported, reason: "only HTTP/1.x is served here")
        }
        guard let method = HTTPRequest.Method(head.method.rawValue) else {
            throw Refusal(status: .badRequest, reason: "invalid method")
        }
        guard head.headers.count <= self.maxHeaderCount else {
            throw Refusal(
                status: .requestHeaderFieldsTooLarge, reason: "more than \(self.maxHeaderCount) header fields")
        }
        var fields = HTTPFields()
        fields.reserveCapacity(head.headers.count)
        var hosts = 0
        var contentLength: Int?
        var expectsContinue = false
        for (name, value) in head.headers {
            guard let fieldName = HTTPField.Name(name) else {
                throw Refusal(status: .badRequest, reason: "invalid header name")
            }
            if fieldName == .hostField {
                hosts += 1
            } else if fieldName == .contentLength {
                // The decoder has already checked the framing; this only reads the number.
                contentLength = Int(value.trimmingHTTPWhitespace())
            } else if fieldName == .transferEncoding {
                try Self.checkTransferEncoding(value)
            } else if fieldName == .expect {
                guard value.lowercased() == "100-continue" else {
                    throw Refusal(status: .expectationFailed, reason: "unsupported expectation")
                }
                expectsContinue = head.version.minor >= 1
            }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        // RFC 9112 §3.2: a server MUST answer 400 to an HTTP/1.1 request without exactly one Host.
        if head.version.minor >= 1 && hosts != 1 {
            throw Refusal(status: .badRequest, reason: hosts == 0 ? "missing Host header" : "several Host headers")
        }
        if let contentLength, contentLength > self.maxBodySize {
            throw Refusal(status: .contentTooLarge, reason: "body larger than \(self.maxBodySize) bytes")
        }
        return Parsed(
            method: method,
            version: Switchboard.HTTPVersion(major: head.version.major, minor: head.version.minor),
            headers: fields,
            contentLength: contentLength,
            expectsContinue: expectsContinue
        )
    }

    /// RFC 9112 §6.1: the only transfer coding served is `chunked`, and it must come last; another coding gets
    /// `501 Not Implemented` (the body could not be read as the client meant it), a list not ending in `chunked` 400.
    private static func checkTransferEncoding(_ value: String) throws(Refusal) {
        let codings = value.split(separator: ",").map { $0.trimmingHTTPWhitespace().lowercased() }
        if let unknown = codings.first(where: { $0 != "chunked" }) {
            throw Refusal(status: .notImplemented, reason: "transfer coding \(unknown.prefix(40)) is not implemented")
        }
        guard codings.count == 1 else {
            throw Refusal(status: .badRequest, reason: "chunked may be applied once only")
        }
    }
}
