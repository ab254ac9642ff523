import Logging
import NIOCore
import Switchboard
import SwitchboardLocks

/// The byte view and channel view of a hijacked connection.
final class RawConnectionIO: HijackedIO {
    private enum Mode {
        /// Nobody has read yet; bytes wait in the relay.
        case fresh
        /// The byte view reads; `currentBodyComplete` tells whether the hijacked request's `.end` was seen.
        case reading(currentBodyComplete: Bool)
        /// Protocol handlers own the bytes.
        case handlersInstalled
    }

    private let connection: HTTPConnection
    private let relay: NIOLoopBound<HijackRelayHandler>
    private let mode: Locked<Mode>
    private let initialBodyComplete: Bool

    init(connection: HTTPConnection, relay: NIOLoopBound<HijackRelayHandler>, currentBodyComplete: Bool) {
        self.connection = connection
        self.relay = relay
        self.initialBodyComplete = currentBodyComplete
        self.mode = Locked(.fresh)
    }

    func read() async throws -> ByteBuffer? {
        let (attach, bodyComplete) = try self.mode.withLock { mode -> (Bool, Bool) in
            switch mode {
            case .fresh:
                mode = .reading(currentBodyComplete: self.initialBodyComplete)
                return (true, self.initialBodyComplete)
            case .reading(let complete):
                return (false, complete)
            case .handlersInstalled:
                throw HijackError.handlersInstalled
            }
        }
        if attach {
            let relay = self.relay
            try await self.connection.channel.eventLoop.submit {
                if let context = relay.value.context { relay.value.attachReader(context: context) }
            }.value()
        }
        var inBody = !bodyComplete
        while true {
            switch try await self.connection.reader.next() {
            case nil:
                return nil
            case .raw(let bytes):
                return bytes
            case .body(let bytes) where inBody:
                return bytes
            case .end where inBody:
                inBody = false
                self.mode.withLock { $0 = .reading(currentBodyComplete: true) }
            case .head, .body, .end:
                self.connection.logger.debug("discarding an HTTP request part received after a hijack")
            }
        }
    }

    func write(_ buffer: ByteBuffer) async throws {
        try await self.connection.outbound.write(.bytes(buffer))
    }

    func close() async throws {
        do {
            try await self.connection.channel.close()
        } catch ChannelError.alreadyClosed {
            // Closing twice is harmless; the peer may have closed first.
        }
    }

    func closeOutput() async throws {
        try await self.connection.channel.close(mode: .output)
    }

    func installHandlers(_ makeHandlers: @escaping @Sendable () throws -> [any ChannelHandler]) async throws {
        try self.mode.withLock { mode in
            switch mode {
            case .fresh: mode = .handlersInstalled
            case .reading: throw HijackError.byteViewInUse
            case .handlersInstalled: break
            }
        }
        let relay = self.relay
        try await self.connection.channel.eventLoop.submit {
            guard let context = relay.value.context else { throw HijackError.connectionClosed }
            try relay.value.install(try makeHandlers(), context: context)
        }.value()
        self.connection.phase.withLock { $0.handlersInstalled = true }
    }
}
