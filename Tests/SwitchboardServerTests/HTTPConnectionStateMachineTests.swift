import SwitchboardTesting
import Testing

@testable import SwitchboardServer

@Suite("Connection state machine")
struct HTTPConnectionStateMachineTests {
    @Test("Idle → reading head → busy → idle, with the matching timers")
    func requestCycle() {
        var machine = HTTPConnectionStateMachine()
        #expect(machine.readCompleted() == .armHeadTimer)
        #expect(machine.readCompleted() == .none, "later bytes must not extend the head-read deadline")
        #expect(machine.receivedHead() == .cancelTimer)
        #expect(machine.readCompleted() == .none)
        #expect(machine.responseEnded() == .armIdleTimer)
        #expect(machine.state == .idle)
    }

    @Test("Pipelined requests: idle only after the last response")
    func pipelining() {
        var machine = HTTPConnectionStateMachine()
        _ = machine.receivedHead()
        #expect(machine.receivedHead() == .none)
        #expect(machine.responseEnded() == .none)
        #expect(machine.responseEnded() == .armIdleTimer)
    }

    @Test("Timeouts: idle closes quietly, a slow head gets 408, a busy connection is left alone")
    func timeouts() {
        var idle = HTTPConnectionStateMachine()
        #expect(idle.timerFired() == .closeIdle)
        var slow = HTTPConnectionStateMachine()
        _ = slow.readCompleted()
        #expect(slow.timerFired() == .closeSlowHead)
        var busy = HTTPConnectionStateMachine()
        _ = busy.receivedHead()
        #expect(busy.timerFired() == .none)
    }

    @Test("Quiesce closes an idle connection now and a busy one after its responses")
    func quiesce() {
        var idle = HTTPConnectionStateMachine()
        #expect(idle.quiesce() == .close)
        var busy = HTTPConnectionStateMachine()
        _ = busy.receivedHead()
        _ = busy.receivedHead()
        #expect(busy.quiesce() == .none)
        #expect(busy.responseEnded() == .none)
        #expect(busy.responseEnded() == .close)
    }
}
