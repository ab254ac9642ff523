import NIOCore

/// Told what happens on this node's `/ws` sockets: what webhooks are made of. Called on the socket's event loop (or
/// the presence store's caller's); must return at once.
package protocol ChatObserver: Sendable {
    /// A socket is in use: at its token (with the user) or, anonymous, at its first join.
    func socketOpened(_ member: PresenceMember)
    /// A socket that was reported open closed.
    func socketClosed(_ member: PresenceMember)
    /// `member` entered `room` (joined, or came back under a new name).
    func entered(_ member: PresenceMember, room: String)
    /// `member` left `room` (left, closed, was unsubscribed, or is about to come back under a new name).
    func left(_ member: PresenceMember, room: String)
    /// `member` said `text` in `room`, and the room's log stored it.
    func said(_ member: PresenceMember, room: String, text: String)
}

/// A presence store that tells an observer of every change it is asked to make: every enter and leave of this
/// node's sockets goes through the store, so nothing the sessions do is missed.
struct ObservedPresence: PresenceStore {
    let store: any PresenceStore
    let observer: any ChatObserver

    func enter(_ member: PresenceMember, room: String, promise: EventLoopPromise<Void>?) {
        self.store.enter(member, room: room, promise: promise)
        self.observer.entered(member, room: room)
    }

    func leave(_ member: PresenceMember, room: String) {
        self.store.leave(member, room: room)
        self.observer.left(member, room: room)
    }

    func members(of room: String) async throws -> [PresenceMember] {
        try await self.store.members(of: room)
    }
}
