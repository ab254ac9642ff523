import FoundationEssentials
package import NIOCore
package import SwitchboardPubSub

/// Where room messages get their ids, are kept for history and catch-up, and are fanned out.
package protocol RoomLog: Sendable {
    /// Stores a message (assigning its id and timestamp) and publishes it to the room's broker channel, so that
    /// every subscriber sees a room's messages in id order. `promise` completes once stored and published.
    /// `client` is who the message is charged to, where the log keeps per-client budgets.
    func post(
        room: String, nick: String, user: String?, client: ClientID?, text: String, promise: EventLoopPromise<Void>?)

    /// The history to send on join, a page at a time: without `since`, the recent messages (one page); with it,
    /// up to `limit` messages after `since`, and whether more follow; or, with `gap`, the recent messages when
    /// `since` is no longer (or never was) in the log.
    func history(of room: String, since: String?, limit: Int) async throws -> HistoryPage
}

extension RoomLog {
    /// Posts a message of an anonymous sender, charged to no client in particular.
    package func post(room: String, nick: String, text: String, promise: EventLoopPromise<Void>?) {
        self.post(room: room, nick: nick, user: nil, client: nil, text: text, promise: promise)
    }
}

/// A page of a room's history.
package struct HistoryPage: Sendable, Equatable {
    /// The messages, oldest first.
    package var messages: [RoomMessage]
    /// `since` is not in the log (too old, or the log restarted): `messages` are the recent ones instead.
    package var gap: Bool
    /// More messages follow the last one (read them with `since` = its id).
    package var more: Bool

    package init(messages: [RoomMessage], gap: Bool, more: Bool = false) {
        self.messages = messages
        self.gap = gap
        self.more = more
    }
}

/// The embedded log: ``InMemoryRoomHistory`` and a broker (the in-process one, normally).
package struct InMemoryRoomLog: RoomLog {
    let history: InMemoryRoomHistory
    let broker: any Broker

    package init(history: InMemoryRoomHistory, broker: any Broker) {
        self.history = history
        self.broker = broker
    }

    package func post(
        room: String, nick: String, user: String?, client: ClientID?, text: String, promise: EventLoopPromise<Void>?
    ) {
        // Id assignment and publication happen under the room's lock: subscribers see id order.
        let writer = client.map { "\($0)" } ?? ""
        self.history.appendNow(room: room, nick: nick, user: user, writer: writer, text: text) { message in
            guard let json = try? message.json() else {
                promise?.fail(BrokerError("the message could not be encoded"))
                return
            }
            self.broker.publish(json, to: RoomChannel.name(of: room), promise: promise)
        }
    }

    package func history(of room: String, since: String?, limit: Int) async throws -> HistoryPage {
        self.history.history(of: room, since: since, limit: limit)
    }
}

/// The broker channel (the topic) of a room.
package enum RoomChannel {
    /// `room:<name>`.
    package static func name(of room: String) -> String { "room:\(room)" }
}
