import HTTPTypes
import Logging
import NIOCore

/// Checks the application's side of the server contract, like Rack::Lint.
///
/// It turns a broken response into `500 Internal Server Error` and logs an error naming the rule, so
/// that a bug shows up in development instead of as a confused client. The rules:
/// - the status is 100–599, and 1xx only with a partial hijack (such as `101 Switching Protocols`);
/// - header names are valid tokens (no pseudo-header fields), values contain no control characters;
/// - `Content-Length` is one non-negative integer, equal to the length of a fixed body, absent for
///   statuses without a body (1xx, 204, 304), and never together with `Transfer-Encoding`;
/// - a partial hijack (``Response/hijack``) only where ``Request/isHijackable`` was `true`;
/// - after a full hijack (``Request/hijack()``) nothing uses the returned response's body, and the
///   response is not a partial hijack too.
///
/// - Important: Place it first, so it sees the response every other middleware produced.
public struct Lint: Middleware {
    /// How much a violation tells the client.
    public struct Mode: Sendable, Hashable {
        fileprivate let explains: Bool
        /// The 500 response explains the violation (for development).
        public static let development = Mode(explains: true)
        /// The 500 response is generic; the log has the details.
        public static let production = Mode(explains: false)
    }

    /// How much a violation tells the client.
    public let mode: Mode

    /// Creates the middleware.
    ///
    /// - Parameter mode: `.development` (the default) explains violations in the 500 body.
    public init(mode: Mode = .development) {
        self.mode = mode
    }

    public func respond(to request: Request, next: any Application) async throws -> Response {
        let wasHijackable = request.isHijackable
        var response = try await next.respond(to: request)
        if request.isHijacked {
            if response.hijack != nil {
                self.report("a fully hijacked request returned a partial-hijack response", request)
            }
            // The server must ignore this response; make any use of its body loud.
            let logger = request.logger
            response.body = ResponseBody { _ in
                logger.error("Lint: the body of a fully hijacked request's response was used")
                throw LintViolation(rule: "the body of a fully hijacked request's response was used")
            }
            response.hijack = nil
            return response
        }
        if let violation = Self.violation(in: response, hijackable: wasHijackable) {
            return self.report(violation, request)
        }
        return response
    }

    @discardableResult
    private func report(_ violation: String, _ request: Request) -> Response {
        request.logger.error(
            "Lint: \(violation)",
            metadata: ["switchboard.request.target": "\(request.target)"]
        )
        let body = self.mode.explains ? "Rack::Lint-style violation: \(violation)\n" : "Internal Server Error\n"
        return Response(
            status: .internalServerError,
            headers: [.contentType: "text/plain; charset=utf-8", .contentLength: String(body.utf8.count)],
            body: .init(string: body)
        )
    }

    /// The first rule `response` breaks, or `nil`.
    static func violation(in response: Response, hijackable: Bool) -> String? {
        let status = response.status.code
        guard (100...599).contains(status) else { return "status \(status) is outside 100–599" }
        for field in response.headers {
            if field.name.rawName.hasPrefix(":") { return "header \(field.name.rawName) is a pseudo-header field" }
            if !HTTPField.isValidValue(field.value) {
                return "header \(field.name.rawName) has an invalid value"
            }
        }
        if (100..<200).contains(status) && response.hijack == nil {
            return "an interim status \(status) needs a partial hijack (a final response is 200–599)"
        }
        if response.hijack != nil && !hijackable {
            return "a partial hijack was returned for a request that is not hijackable"
        }
        let lengths = response.headers[values: .contentLength]
        if !lengths.isEmpty {
            guard lengths.count == 1, let length = Int(lengths[0]), length >= 0, lengths[0].allSatisfy(\.isASCII)
            else { return "Content-Length \(lengths.joined(separator: ", ")) is not one non-negative integer" }
            if response.status.forbidsBody { return "status \(status) must not have Content-Length" }
            if response.headers[.transferEncoding] != nil {
                return "Content-Length and Transfer-Encoding must not both be set"
            }
            if response.hijack == nil, let known = response.body.knownLength, known != length {
                return "Content-Length \(length) does not match the body's \(known) bytes"
            }
        }
        if response.status.forbidsBody, response.hijack == nil, (response.body.knownLength ?? 1) != 0 {
            return "status \(status) must not have a body"
        }
        return nil
    }
}

/// A broken rule of the app contract, thrown when a hijacked response's body is used.
struct LintViolation: Error, CustomStringConvertible {
    let rule: String
    var description: String { "Lint: \(self.rule)" }
}
