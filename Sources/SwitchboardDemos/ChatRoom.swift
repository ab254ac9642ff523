import NIOConcurrencyHelpers
import NIOCore
public import Switchboard
public import SwitchboardWebSocket

/// An in-process chat room: every text message goes to every member, sender included (the seed's chat, before
/// the pub/sub layer takes over fan-out across processes).
///
/// Fan-out follows the hot-path rule of ARCHITECTURE.md: a message is framed once (``PreparedMessage``), members
/// are grouped by event loop, and each loop gets one task that writes the same buffer to its members. No task,
/// copy or lock per recipient; a lock is taken once per message to list the loops.
public final class ChatRoom: Sendable {
    /// The members on one event loop; touched only on that loop.
    private final class LoopMembers {
        var sockets: [ObjectIdentifier: WebSocket] = [:]
    }

    private struct LoopEntry {
        let eventLoop: any EventLoop
        let members: NIOLoopBound<LoopMembers>
    }

    private let loops = NIOLockedValueBox<[ObjectIdentifier: LoopEntry]>([:])

    /// Creates an empty room.
    public init() {}

    /// Adds `socket`; call on its event loop (from `onOpen`).
    public func join(_ socket: WebSocket) {
        self.entry(for: socket.eventLoop).members.value.sockets[ObjectIdentifier(socket)] = socket
    }

    /// Removes `socket`; call on its event loop (from `onClose`).
    public func leave(_ socket: WebSocket) {
        self.entry(for: socket.eventLoop).members.value.sockets[ObjectIdentifier(socket)] = nil
    }

    /// Sends `text` to every member.
    public func broadcast(_ text: String) {
        let prepared = PreparedMessage(.text(text))
        let entries = self.loops.withLockedValue { Array($0.values) }
        for entry in entries {
            let members = entry.members
            entry.eventLoop.execute {
                for socket in members.value.sockets.values {
                    try? socket.send(prepared)
                }
            }
        }
    }

    private func entry(for eventLoop: any EventLoop) -> LoopEntry {
        let key = ObjectIdentifier(eventLoop)
        return self.loops.withLockedValue { loops in
            if let entry = loops[key] { return entry }
            let entry = LoopEntry(eventLoop: eventLoop, members: NIOLoopBound(LoopMembers(), eventLoop: eventLoop))
            loops[key] = entry
            return entry
        }
    }
}

/// `GET /chat`: the seed's protocol, raw text frames, every message to every `/chat` socket, sender included.
public enum ChatEndpoint {
    /// Answers the handshake and joins `room`.
    public static func upgrade(_ request: Request, room: ChatRoom) -> Response {
        WebSocket.upgrade(request) { socket in
            socket.onOpen { socket in room.join(socket) }
            socket.onMessage { _, message in
                if message.kind == .text { room.broadcast(message.text) }
            }
            socket.onClose { socket, _, _ in room.leave(socket) }
        }
    }
}
