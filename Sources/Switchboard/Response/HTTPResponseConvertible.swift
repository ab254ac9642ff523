public import HTTPTypes

/// An error that maps to an HTTP response: servers answer with its ``response`` instead of a 500.
public protocol HTTPResponseConvertible: Error {
    /// The response that describes this error to the client.
    var response: Response { get }
}

/// An error with a status and a short message, for apps that answer with an HTTP error by throwing.
///
/// ```swift
/// guard let name = request.parameters["name"] else { throw HTTPError(.badRequest, "missing name") }
/// ```
public struct HTTPError: Error, HTTPResponseConvertible, CustomStringConvertible {
    /// The status to answer with.
    public var status: HTTPResponse.Status
    /// A message for the client, sent as a `text/plain` body.
    public var message: String
    /// Extra header fields for the response, such as `Sec-WebSocket-Version` on a 426.
    public var headers: HTTPFields

    /// Creates an error answered with `status` and `message` (the reason phrase when omitted).
    public init(_ status: HTTPResponse.Status, _ message: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.message = message ?? status.reasonPhrase
        self.headers = headers
    }

    public var description: String { "\(self.status.code) \(self.message)" }

    public var response: Response {
        var headers = self.headers
        headers[.contentType] = "text/plain; charset=utf-8"
        return Response(status: self.status, headers: headers, body: .init(string: self.message + "\n"))
    }
}
