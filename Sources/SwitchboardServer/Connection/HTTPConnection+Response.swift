import HTTPTypes
import Logging
import NIOCore
import Switchboard
import SwitchboardLocks

extension HTTPConnection {
    /// Bodies up to this size are copied behind the head so a response leaves in one write.
    private static let coalescingLimit = 16 * 1024

    /// Writes `response` as the answer to `request`.
    ///
    /// - Returns: Whether the response was framed so that the connection can carry another request.
    func write(_ response: Response, to request: Request, keepAlive: Bool) async throws -> Bool {
        var response = response
        // A final response must be 200–599: an interim (1xx) status such as 101 is only meaningful with a
        // hijack, and anything else is not HTTP.
        if !(200...599).contains(response.status.code) {
            self.logger.error("application returned status \(response.status.code) without a hijack; sending 500")
            response = Response(status: .internalServerError, body: .init(string: "Internal Server Error\n"))
        }
        let suppressBody = request.method == .head || response.status.forbidsBody
        let framing: BodyFraming
        var announcedLength: Int?
        var keepAlive = keepAlive
        switch response.body.storage {
        case .empty, .buffer:
            let length = response.body.knownLength ?? 0
            framing = suppressBody ? .none : .length(length)
            announcedLength = response.status.forbidsBody ? nil : length
        case .stream(let length, _):
            if let length = length ?? response.headers[.contentLength].flatMap({ Int($0) }) {
                framing = suppressBody ? .none : .length(length)
                announcedLength = response.status.forbidsBody ? nil : length
            } else if suppressBody {
                framing = .none
            } else if request.version.minor >= 1 {
                framing = .chunked
            } else {
                framing = .untilClose
                keepAlive = false
            }
        }
        let connectionHeader: String? =
            keepAlive ? (request.version.minor == 0 ? "keep-alive" : nil) : "close"

        // Sized for the head and a body that goes behind it, so neither grows the buffer while it is written.
        var capacity = ResponseHead.estimatedSize(of: response.headers)
        if case .buffer(let body) = response.body.storage, framing != .none, body.readableBytes <= Self.coalescingLimit
        {
            capacity += body.readableBytes
        }
        var buffer = self.channel.allocator.buffer(capacity: capacity)
        ResponseHead.write(
            status: response.status,
            headers: response.headers,
            contentLength: announcedLength,
            chunked: framing == .chunked,
            connection: connectionHeader,
            serverName: self.configuration.serverName,
            verbatim: false,
            into: &buffer
        )

        switch (framing, response.body.storage) {
        case (.none, _):
            try await self.outbound.write(.responseEnd(buffer))
        case (_, .empty):
            try await self.outbound.write(.responseEnd(buffer))
        case (_, .buffer(var body)):
            if body.readableBytes <= Self.coalescingLimit {
                buffer.writeBuffer(&body)
                try await self.outbound.write(.responseEnd(buffer))
            } else {
                try await self.outbound.write(contentsOf: [.bytes(buffer), .responseEnd(body)])
            }
        case (_, .stream(_, let writeBody)):
            try await self.outbound.write(.bytes(buffer))
            let writer = BodyWriter(outbound: self.outbound, framing: framing)
            do {
                try await writeBody(writer)
                try await writer.finish()
            } catch {
                // The head is out, so there is no way to report the failure but to cut the connection.
                self.logger.debug("response body failed", metadata: ["switchboard.error": "\(error)"])
                try await self.outbound.write(.responseEnd(nil))
                return false
            }
        }
        return keepAlive
    }
}

/// Writes a streamed body with the framing the head announced, and checks a declared length.
final class BodyWriter: ResponseBodyWriter {
    private let outbound: ConnectionIO
    private let framing: BodyFraming
    private let written = Locked(0)

    init(outbound: ConnectionIO, framing: BodyFraming) {
        self.outbound = outbound
        self.framing = framing
    }

    func write(_ buffer: ByteBuffer) async throws {
        guard buffer.readableBytes > 0 else { return }
        let total = self.written.withLock { written in
            written += buffer.readableBytes
            return written
        }
        switch self.framing {
        case .none:
            return
        case .length(let length):
            guard total <= length else { throw BodyLengthError(declared: length, written: total) }
            try await self.outbound.write(.bytes(buffer))
        case .untilClose:
            try await self.outbound.write(.bytes(buffer))
        case .chunked:
            var prefix = ByteBuffer()
            prefix.writeString(String(buffer.readableBytes, radix: 16))
            prefix.writeStaticString("\r\n")
            try await self.outbound.write(contentsOf: [
                .bytes(prefix), .bytes(buffer), .bytes(ByteBuffer(staticString: "\r\n")),
            ])
        }
    }

    /// Ends the body: the last chunk for chunked framing, a length check for `Content-Length`.
    func finish() async throws {
        switch self.framing {
        case .chunked:
            try await self.outbound.write(.responseEnd(ByteBuffer(staticString: "0\r\n\r\n")))
        case .length(let length):
            let written = self.written.withLock { $0 }
            guard written == length else { throw BodyLengthError(declared: length, written: written) }
            try await self.outbound.write(.responseEnd(nil))
        case .none, .untilClose:
            try await self.outbound.write(.responseEnd(nil))
        }
    }
}

/// A streamed body wrote a different number of bytes than its declared length.
struct BodyLengthError: Error, CustomStringConvertible {
    let declared: Int
    let written: Int
    var description: String { "response body wrote \(self.written) bytes but declared \(self.declared)" }
}
