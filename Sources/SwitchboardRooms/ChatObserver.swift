/// Told what this node's `/ws` sockets do: with the presence transitions (``PresenceObserver``), what webhooks are
/// made of. Called on the socket's event loop; must return at once.
package protocol ChatObserver: Sendable {
    /// A socket is in use: at its token (with the user) or, anonymous, at its first join.
    func socketOpened(_ member: PresenceMember)
    /// A socket that was reported open closed.
    func socketClosed(_ member: PresenceMember)
    /// `member` said `text` in `room`, and the room's log stored it.
    func said(_ member: PresenceMember, room: String, text: String)
}
