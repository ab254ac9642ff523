import HTTPTypes
import Logging
import NIOCore
import Switchboard
import SwitchboardLocks
import Synchronization

/// The hijack capability of request `serial`: valid while the app is answering that request.
struct ConnectionHijacker: RequestHijacker {
    let connection: HTTPConnection
    let serial: Int

    var isHijackable: Bool {
        self.connection.phase.withLock { $0.stage == .responding(serial: self.serial) }
    }

    var isHijacked: Bool {
        self.connection.phase.withLock { $0.serial == self.serial && $0.stage == .hijacked }
    }

    var eventLoop: any EventLoop { self.connection.channel.eventLoop }

    func hijack() async throws -> HijackedConnection {
        try self.connection.phase.withLock { phase in
            switch phase.stage {
            case .responding(let serial) where serial == self.serial:
                phase.stage = .hijacked
            case .hijacked:
                throw HijackError.alreadyHijacked
            case .responding, .serving:
                throw HijackError.responseStarted
            }
        }
        let relay = try await self.connection.switchToRawBytes()
        self.connection.logger.debug("connection fully hijacked")
        return self.connection.hijackedConnection(relay: relay)
    }
}

extension HTTPConnection {
    /// Swaps the HTTP handlers for a ``HijackRelayHandler``, in one event-loop turn.
    ///
    /// The relay goes in first, so that nothing arriving meanwhile meets a pipeline without a handler for
    /// it. The decoder goes last: removing it forwards the bytes it had buffered but not parsed (all of
    /// them after an Upgrade or CONNECT request) into the relay, in a later turn, in order.
    func switchToRawBytes() async throws -> NIOLoopBound<HijackRelayHandler> {
        let handlers = self.httpHandlers
        let channel = self.channel
        let logger = self.logger
        return try await channel.eventLoop.submit {
            guard let (gate, decoder, connectionHandler) = handlers.value else { throw HijackError.alreadyHijacked }
            // The HTTP handlers leave for good; dropping our references frees them (the decoder holds a buffer).
            handlers.value = nil
            let pipeline = channel.pipeline.syncOperations
            // After a hijack the server never times the connection out: the hijacker owns its writes.
            (try? pipeline.handler(type: ConnectionBridgeHandler.self))?.stopTimingWrites()
            let relay = HijackRelayHandler(logger: logger)
            try pipeline.addHandler(relay, position: .after(connectionHandler))
            pipeline.removeHandler(connectionHandler, promise: nil)
            pipeline.removeHandler(decoder, promise: nil)
            // The decoder forwards its leftovers from a task it has just enqueued; a held half-close must
            // follow them, so release the gate from a task enqueued after it.
            let gateBound = NIOLoopBound(gate, eventLoop: channel.eventLoop)
            channel.eventLoop.execute {
                let gate = gateBound.value
                if let context = gate.context { gate.release(context: context) }
            }
            return NIOLoopBound(relay, eventLoop: channel.eventLoop)
        }.value()
    }

    /// After a hijacker installed its protocol handlers and its code returned, takes the relay and the bridge to
    /// the (finished) connection task out of the pipeline: nothing reads or writes through them any more, and on
    /// a server holding many idle WebSockets their few hundred bytes per connection add up.
    ///
    /// - Returns: Whether they were retired (only after handlers were installed).
    @discardableResult
    func retireHijackRelay() -> Bool {
        guard self.phase.withLock({ $0.handlersInstalled }) else { return false }
        let channel = self.channel
        channel.eventLoop.execute {
            let pipeline = channel.pipeline.syncOperations
            if let relay = try? pipeline.context(handlerType: HijackRelayHandler.self) {
                pipeline.removeHandler(context: relay, promise: nil)
            }
            if let bridge = try? pipeline.context(handlerType: ConnectionBridgeHandler.self) {
                pipeline.removeHandler(context: bridge, promise: nil)
            }
        }
        return true
    }

    func hijackedConnection(relay: NIOLoopBound<HijackRelayHandler>) -> HijackedConnection {
        let bodyComplete = self.phase.withLock { $0.body == .complete }
        let io = RawConnectionIO(connection: self, relay: relay, currentBodyComplete: bodyComplete)
        return HijackedConnection(channel: self.channel, io: io)
    }

    /// Sends the app's status and headers as written, then gives the connection to the hijack closure.
    func partiallyHijack(_ handOver: PartialHijack) async throws {
        self.phase.withLock { $0.stage = .hijacked }
        let relay = try await self.switchToRawBytes()
        var head = self.channel.allocator.buffer(capacity: 256)
        ResponseHead.write(
            status: handOver.status,
            headers: handOver.headers,
            contentLength: nil,
            chunked: false,
            connection: nil,
            serverName: self.configuration.serverName,
            verbatim: true,
            into: &head
        )
        try await self.outbound.write(.bytes(head))
        self.logger.debug("connection partially hijacked", metadata: ["switchboard.status": "\(handOver.status.code)"])
        do {
            try await handOver.hijack(self.hijackedConnection(relay: relay))
        } catch {
            self.logger.debug("hijacker failed; closing", metadata: ["switchboard.error": "\(error)"])
            try? await self.channel.close()
        }
    }
}

/// What a partial hijack needs once the request is done: the head to send and the closure to call.
struct PartialHijack {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var hijack: @Sendable (HijackedConnection) async throws -> Void
}
