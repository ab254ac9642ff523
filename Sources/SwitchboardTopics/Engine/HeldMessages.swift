import SwitchboardWebSocket
import Synchronization

/// What a topic delivered on one event loop for a reservation that is not attached yet (a WebSocket handshake in
/// flight): kept in order, and handed to the member when it attaches, so nothing published after the reservation
/// was made is missed. Touched only on its loop.
final class HeldMessages {
    enum Item {
        case messages([PreparedMessage])
        case gap
    }

    private(set) var items: [Item] = []
    private var bytes = 0
    private let maxBytes: Int
    private let counters: Topics.Counters

    init(maxBytes: Int, counters: Topics.Counters) {
        self.maxBytes = maxBytes
        self.counters = counters
    }

    func hold(_ batch: [PreparedMessage]) {
        let size = batch.reduce(0) { $0 + $1.payloadSize }
        guard self.bytes + size <= self.maxBytes else {
            // Nobody attached for that long (a handshake that stalls): keep a gap in place of what was held, so the
            // member is told instead of holding memory without bound.
            let dropped = self.items.reduce(batch.count) { count, item in
                if case .messages(let held) = item { return count + held.count }
                return count
            }
            self.counters.droppedBeforeAttach.wrappingAdd(dropped, ordering: .relaxed)
            self.items = [.gap]
            self.bytes = 0
            return
        }
        self.bytes += size
        self.items.append(.messages(batch))
    }

    func holdGap() {
        if case .gap = self.items.last { return }
        self.items.append(.gap)
    }
}
