import Testing

@testable import SwitchboardWebSocket

@Suite("Close handshake state machine (RFC 6455 §7)")
struct CloseHandshakeTests {
    @Test("The peer closes first: we echo its code (or an empty payload), then close TCP; it reports the peer's code")
    func peerClosesFirst() {
        var machine = CloseHandshake()
        #expect(machine.isOpen && machine.readsFrames)
        #expect(machine.peerClosed(code: .goingAway, reason: "bye") == .echoThenCloseTCP(.goingAway))
        #expect(!machine.isOpen && !machine.readsFrames)
        #expect(machine.peerClosed(code: .normalClosure, reason: "") == .ignore, "a second close frame is ignored")
        #expect(machine.connectionEnded() == (code: .goingAway, reason: "bye"))

        var empty = CloseHandshake()
        #expect(empty.peerClosed(code: nil, reason: "") == .echoThenCloseTCP(nil))
        #expect(empty.connectionEnded().code == .noStatusReceived, "1005: no status in the peer's close frame")
    }

    @Test("We close first: one close frame, frames still read until the peer answers, then TCP closes")
    func weCloseFirst() {
        var machine = CloseHandshake()
        #expect(
            machine.startClosing(code: .goingAway, reason: "server shutting down")
                == .sendClose(.goingAway, "server shutting down"))
        #expect(!machine.isOpen, "nothing more is sent or delivered")
        #expect(machine.readsFrames, "the peer's frames are read to reach its close frame")
        #expect(machine.startClosing(code: .normalClosure, reason: "") == .ignore, "one close frame only")
        #expect(machine.peerClosed(code: .goingAway, reason: "") == .closeTCP)
        #expect(!machine.readsFrames)
        #expect(machine.connectionEnded().code == .goingAway)
    }

    @Test("A protocol violation sends its code without a reason, then closes; after our close frame it just closes")
    func violations() {
        var open = CloseHandshake()
        #expect(
            open.peerFailed(code: .protocolError, reason: "unmasked frame")
                == .sendCloseThenCloseTCP(.protocolError, ""))
        #expect(open.connectionEnded() == (code: .protocolError, reason: "unmasked frame"))

        var closing = CloseHandshake()
        _ = closing.startClosing(code: .normalClosure, reason: "")
        #expect(closing.peerFailed(code: .invalidFramePayloadData, reason: "bad UTF-8") == .closeTCP)
        #expect(closing.connectionEnded().code == .invalidFramePayloadData)
    }

    @Test("An unresponsive peer gets a close frame with the reason; a slow consumer is dropped without one")
    func timeoutsAndSlowConsumers() {
        var unresponsive = CloseHandshake()
        #expect(
            unresponsive.peerUnresponsive(code: .goingAway, reason: "keepalive timeout")
                == .sendCloseThenCloseTCP(.goingAway, "keepalive timeout"))
        #expect(unresponsive.peerUnresponsive(code: .goingAway, reason: "again") == nil)

        var slow = CloseHandshake()
        slow.droppedSlowConsumer(code: .policyViolation)
        #expect(!slow.isOpen && !slow.readsFrames)
        #expect(slow.connectionEnded() == (code: .policyViolation, reason: "slow consumer"))
    }

    @Test("A connection that ends without any close frame reports 1006")
    func abnormal() {
        var machine = CloseHandshake()
        #expect(machine.connectionEnded() == (code: .abnormalClosure, reason: ""))
        #expect(!machine.isOpen)
    }
}
