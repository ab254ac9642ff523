import Logging
import NIOCore
import NIOHTTP1
import Switchboard

/// Takes the HTTP handlers' place at a hijack: carries raw bytes between the socket and the connection's
/// `ConnectionBridgeHandler`, and holds the first bytes until the hijacker decides where they go.
///
/// Until then it buffers what arrives (the HTTP decoder's leftovers included) and an end of input, and stops
/// asking the socket for more once it holds ``bufferLimit`` bytes, so a client cannot grow it. The hijacker
/// then either reads through the byte view (``attachReader(context:)``: buffered bytes go to the async
/// stream) or installs protocol handlers in front of it (``install(_:context:)``: buffered bytes are
/// replayed into them).
final class HijackRelayHandler: ChannelDuplexHandler, RemovableChannelHandler {
    /// Raw bytes, and also HTTP parts: after a request that was not an Upgrade or CONNECT the decoder keeps
    /// parsing what arrives while it is being removed, and those parts come here. `Any` is how a handler
    /// accepts two types: `NIOAny` unwraps a `ByteBuffer` as `IOData` and anything else as itself.
    typealias InboundIn = Any
    typealias InboundOut = ConnectionInbound
    typealias OutboundIn = ConnectionOutbound
    typealias OutboundOut = ByteBuffer

    static let bufferLimit = 64 * 1024

    private enum Mode {
        case holding(bytes: ByteBuffer?, inputClosed: Bool, readPending: Bool)
        case forwarding
    }

    private var mode: Mode = .holding(bytes: nil, inputClosed: false, readPending: false)
    private(set) var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    init(logger: Logger) {
        self.logger = logger
    }

    private let logger: Logger

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = self.unwrapInboundIn(data)
        var bytes: ByteBuffer
        if case .byteBuffer(let buffer)? = value as? IOData {
            bytes = buffer
        } else if let buffer = value as? ByteBuffer {
            bytes = buffer
        } else {
            // A request pipelined behind a hijacked plain request, parsed before the parser left.
            self.logger.debug("discarding an HTTP request part received after a hijack")
            return
        }
        switch self.mode {
        case .holding(var held, let inputClosed, let readPending):
            if held == nil {
                held = bytes
            } else {
                held!.writeBuffer(&bytes)
            }
            self.mode = .holding(bytes: held, inputClosed: inputClosed, readPending: readPending)
        case .forwarding:
            context.fireChannelRead(self.wrapInboundOut(.raw(bytes)))
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if case .forwarding = self.mode { context.fireChannelReadComplete() }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .holding(let held, _, let readPending) = self.mode, let event = event as? ChannelEvent,
            event == .inputClosed
        {
            self.mode = .holding(bytes: held, inputClosed: true, readPending: readPending)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func read(context: ChannelHandlerContext) {
        if case .holding(let held, let inputClosed, _) = self.mode, (held?.readableBytes ?? 0) >= Self.bufferLimit {
            self.mode = .holding(bytes: held, inputClosed: inputClosed, readPending: true)
            return
        }
        context.read()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        context.write(self.wrapOutboundOut(self.unwrapOutboundIn(data).buffer), promise: promise)
    }

    /// The byte view starts reading: deliver what is held, then everything, to the async stream.
    func attachReader(context: ChannelHandlerContext) {
        guard case .holding(let held, let inputClosed, let readPending) = self.mode else { return }
        self.mode = .forwarding
        if let held, held.readableBytes > 0 {
            context.fireChannelRead(self.wrapInboundOut(.raw(held)))
            context.fireChannelReadComplete()
        }
        if inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        if readPending { context.read() }
    }

    /// Puts `handlers` in front of this one, in order, and replays what is held into the first of them.
    /// Called again later, it only adds handlers: the bytes already went to the first ones.
    func install(_ handlers: [any ChannelHandler], context: ChannelHandlerContext) throws {
        for handler in handlers {
            try context.pipeline.syncOperations.addHandler(handler, position: .before(self))
        }
        guard case .holding(let held, let inputClosed, let readPending) = self.mode else { return }
        self.mode = .forwarding
        if let held, held.readableBytes > 0 {
            context.pipeline.syncOperations.fireChannelRead(NIOAny(held))
            context.pipeline.syncOperations.fireChannelReadComplete()
        }
        if inputClosed { context.pipeline.syncOperations.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        if readPending { context.read() }
    }
}

@available(*, unavailable)
extension HijackRelayHandler: Sendable {}
