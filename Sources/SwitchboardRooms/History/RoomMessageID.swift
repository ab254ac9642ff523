/// Message ids: `<epoch>/<position>`, where the position is a sequence number (embedded) or a Redis stream id
/// (`<ms>-<seq>`), and the epoch changes when the log restarts empty.
package enum RoomMessageID {
    /// Whether `id` comes after `other`: a later position in the same epoch, or any id of another epoch (the log
    /// restarted, so everything in it is new to a client that knew the old one).
    package static func isAfter(_ id: String, _ other: String) -> Bool {
        guard let (epoch, position) = Self.split(id), let (otherEpoch, otherPosition) = Self.split(other),
            epoch == otherEpoch
        else { return id != other }
        return position.lexicographicallyPrecedes(otherPosition) == false && position != otherPosition
    }

    /// The epoch and the numeric parts of the position.
    package static func split(_ id: String) -> (Substring, [UInt64])? {
        guard let slash = id.lastIndex(of: "/") else { return nil }
        let parts = id[id.index(after: slash)...].split(separator: "-").map { UInt64($0) }
        guard !parts.isEmpty, parts.allSatisfy({ $0 != nil }) else { return nil }
        return (id[..<slash], parts.map { $0! })
    }
}
