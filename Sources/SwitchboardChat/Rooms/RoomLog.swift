import FoundationEssentials
package import NIOCore
import SwitchboardPubSub

/// Where room messages get their ids, are kept for history and catch-up, and are fanned out.
package protocol RoomLog: Sendable {
    /// Stores a message (assigning its id and timestamp) and publishes it to the room's broker channel, so that
    /// every subscriber sees a room's messages in id order. `promise` completes once stored and published.
    func post(room: String, nick: String, text: String, promise: EventLoopPromise<Void>?)

    /// The history to send on join: the recent messages, or those after `since`; or, with `gap`, the recent
    /// messages when `since` is no longer (or never was) in the log.
    func history(of room: String, since: String?) async throws -> (messages: [RoomMessage], gap: Bool)
}

/// The embedded log: ``InMemoryRoomHistory`` and a broker (the in-process one, normally).
struct InMemoryRoomLog: RoomLog {
    let history: InMemoryRoomHistory
    let broker: any Broker

    func post(room: String, nick: String, text: String, promise: EventLoopPromise<Void>?) {
        // Id assignment and publication happen under the room's lock: subscribers see id order.
        self.history.appendNow(room: room, nick: nick, text: text) { message in
            guard let json = try? message.json() else {
                promise?.fail(BrokerError("the message could not be encoded"))
                return
            }
            self.broker.publish(json, to: RoomChannel.name(of: room), promise: promise)
        }
    }

    func history(of room: String, since: String?) async throws -> (messages: [RoomMessage], gap: Bool) {
        try await self.history.history(of: room, since: since)
    }
}

/// The broker channel (the topic) of a room.
package enum RoomChannel {
    /// `room:<name>`.
    package static func name(of room: String) -> String { "room:\(room)" }
}
