import FoundationEssentials
import HTTPTypes
import Switchboard

/// A server API error: an HTTP status and a stable machine-readable code, answered as
/// `{"error":{"code":"…","message":"…"}}` (docs/openapi.json lists the codes).
struct ApiError: Error, CustomStringConvertible {
    var status: HTTPResponse.Status
    /// Stable: clients branch on it. The message is for people and may change.
    var code: String
    var message: String
    var headers: HTTPFields = [:]

    init(_ status: HTTPResponse.Status, _ code: String, _ message: String, headers: HTTPFields = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers
    }

    var description: String { "\(self.status.code) \(self.code): \(self.message)" }

    /// The error's JSON body.
    var body: ErrorBody { ErrorBody(error: .init(code: self.code, message: self.message)) }

    var response: Response {
        var headers = self.headers
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: self.status, headers: headers, body: .init(string: ApiJSON.string(self.body)))
    }

    /// The API's form of an error the framework threw (a body too large, say) or answered (no route).
    init(_ error: HTTPError) {
        let code =
            switch error.status.code {
            case 400: "bad_request"
            case 401: "unauthorized"
            case 403: "forbidden"
            case 404: "not_found"
            case 405: "method_not_allowed"
            case 408: "timeout"
            case 413: "too_large"
            case 415: "unsupported_media_type"
            case 429: "rate_limited"
            case 503: "unavailable"
            default: "error"
            }
        let message = error.message.isEmpty ? error.status.reasonPhrase : error.message
        self.init(error.status, code, message, headers: error.headers)
    }

    static func badRequest(_ message: String) -> ApiError { ApiError(.badRequest, "bad_request", message) }
}

/// `{"error":{"code":"…","message":"…"}}`.
struct ErrorBody: Codable, Equatable {
    struct Detail: Codable, Equatable {
        var code: String
        var message: String
    }

    var error: Detail
}

/// The API's JSON encoding: sorted keys, so the bytes of an answer are stable.
enum ApiJSON {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    static func string(_ value: some Encodable) -> String {
        String(decoding: (try? self.encoder.encode(value)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json", .cacheControl: "no-store"],
            body: .init(string: self.string(value)))
    }
}
