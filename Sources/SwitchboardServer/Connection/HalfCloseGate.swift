import NIOCore

/// Holds back the client's half-close while an Upgrade or CONNECT request is being answered.
///
/// After such a request the HTTP decoder stops parsing and keeps later bytes for whoever takes over. But
/// when the end of input reaches the decoder first, it drops those bytes (it forwards leftovers only when
/// removed before the end of input). A client that sends the head, a payload and its FIN at once would lose
/// the payload. This gate sits in front of the decoder; while ``isHolding`` it keeps the `inputClosed`
/// event, and ``release(context:)`` delivers it after the hijack switch, behind the decoder's leftovers.
final class HalfCloseGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// Set by the connection handler when an Upgrade or CONNECT head has been decoded.
    var isHolding = false
    private var heldInputClosed = false
    private(set) var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if self.isHolding, let event = event as? ChannelEvent, event == .inputClosed {
            self.heldInputClosed = true
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Stops holding, delivers a held end of input, and leaves the pipeline (after a hijack it has no job left).
    func release(context: ChannelHandlerContext) {
        self.isHolding = false
        if self.heldInputClosed {
            self.heldInputClosed = false
            context.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        }
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

@available(*, unavailable)
extension HalfCloseGate: Sendable {}
