package import SwitchboardRooms

/// Turns the chat's socket events and presence transitions into webhook events, and hands them to the dispatcher.
///
/// The transitions come from the presence store, which computes them where presence is recorded (once per cluster
/// with Redis, leaves after their delay): this only names them. `connect`, `disconnect` and `message` are the
/// socket's own node's.
package struct WebhookEvents: ChatObserver, PresenceObserver {
    let dispatcher: WebhookDispatcher

    package init(dispatcher: WebhookDispatcher) {
        self.dispatcher = dispatcher
    }

    package func socketOpened(_ member: PresenceMember) {
        self.dispatcher.send(WebhookEvent(.connect, member))
    }

    package func socketClosed(_ member: PresenceMember) {
        self.dispatcher.send(WebhookEvent(.disconnect, member))
    }

    package func said(_ member: PresenceMember, room: String, text: String) {
        self.dispatcher.send(
            WebhookEvent(
                name: .message, room: room, user: member.user, socket: member.id, nick: member.nick, text: text))
    }

    package func presenceChanged(_ transition: PresenceTransition) {
        switch transition {
        case .roomOccupied(let room, let time):
            self.dispatcher.send(WebhookEvent(name: .roomOccupied, room: room, time: time))
        case .roomVacated(let room, let time):
            self.dispatcher.send(WebhookEvent(name: .roomVacated, room: room, time: time))
        case .memberJoined(let member, let room, let time):
            self.dispatcher.send(WebhookEvent(.memberJoined, member, room: room, time: time))
        case .memberLeft(let member, let room, let time):
            self.dispatcher.send(WebhookEvent(.memberLeft, member, room: room, time: time))
        }
    }
}

extension WebhookEvent {
    /// A socket or member event of `member`: its user, socket id and name.
    init(_ name: Name, _ member: PresenceMember, room: String? = nil, time: Int64 = WebhookEvent.now()) {
        self.init(name: name, room: room, user: member.user, socket: member.id, nick: member.nick, time: time)
    }
}
