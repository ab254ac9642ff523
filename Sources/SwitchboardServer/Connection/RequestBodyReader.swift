import NIOCore
import NIOHTTP1
import Switchboard
import SwitchboardLocks
import Synchronization

/// Streams the body of request `serial` from the connection to the app, enforcing the body limit and
/// sending `100 Continue` when the client asked for it and the app starts reading.
struct RequestBodyReader: RequestBodySource {
    let connection: HTTPConnection
    let serial: Int

    static let continueResponse = ByteBuffer(string: "HTTP/1.1 100 Continue\r\n\r\n")

    func nextBodyChunk() async throws -> ByteBuffer? {
        try await self.connection.nextBodyChunk(serial: self.serial)
    }
}

extension HTTPConnection {
    /// The next chunk of request `serial`'s body, or `nil` after its end (or once the server moved on).
    func nextBodyChunk(serial: Int) async throws -> ByteBuffer? {
        enum Step { case done, read, sendContinueThenRead }
        let now = NIODeadline.now()
        let (step, deadline) = self.phase.withLock { phase -> (Step, NIODeadline) in
            // The whole body within its deadline, whatever the pace: a byte every few seconds cannot hold the app.
            let deadline = phase.bodyDeadline ?? now + self.configuration.bodyDeadline
            guard phase.serial == serial, case .streaming = phase.body, phase.stage != .hijacked else {
                return (.done, deadline)
            }
            if phase.bodyDeadline == nil { phase.bodyDeadline = deadline }
            if phase.expectation == .pending {
                phase.expectation = .sent
                return (.sendContinueThenRead, deadline)
            }
            return (.read, deadline)
        }
        switch step {
        case .done: return nil
        case .sendContinueThenRead: try await self.outbound.write(.bytes(RequestBodyReader.continueResponse))
        case .read: break
        }
        let part: ConnectionInbound?
        do {
            let left = deadline - now
            guard left > .zero else { throw RequestBodyError.timedOut }
            part = try await self.reader.next(timeout: min(self.configuration.bodyReadTimeout, left))
        } catch {
            self.phase.withLock { $0.body = .failed }
            if let error = error as? RequestBodyError, error == .timedOut {
                self.counters.bodyReadTimeouts.wrappingAdd(1, ordering: .relaxed)
            }
            // The decoder found the framing broken: the client's fault (400), not the app's (500).
            if error is HTTPParserError { throw RequestBodyError.malformed }
            throw error
        }
        switch part {
        case .body(let chunk):
            let limit = self.configuration.maxBodySize
            let tooLarge = self.phase.withLock { phase -> Bool in
                guard case .streaming(let received) = phase.body else { return false }
                let total = received + chunk.readableBytes
                phase.body = total > limit ? .failed : .streaming(received: total)
                return total > limit
            }
            if tooLarge {
                self.counters.oversizedRequests.wrappingAdd(1, ordering: .relaxed)
                throw RequestBodyError.tooLarge(limit: limit)
            }
            return chunk
        case .end:
            self.phase.withLock { $0.body = .complete }
            return nil
        case nil, .head, .raw:
            self.phase.withLock { $0.body = .failed }
            throw HijackError.connectionClosed
        }
    }

    /// Reads and drops what the app left of the current request body, so the next request can be parsed.
    ///
    /// - Returns: Whether the connection can go on (the body ended within the server's body limit).
    func discardUnreadBody() async throws -> Bool {
        let serial = self.phase.withLock { $0.serial }
        do {
            while try await self.nextBodyChunk(serial: serial) != nil {}
        } catch {
            return false
        }
        return self.phase.withLock { $0.body == .complete }
    }
}
