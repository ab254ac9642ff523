import SwitchboardRedis
import SwitchboardRooms

/// The Redis keys of a room: all under one hash tag, the room's channel (`{room:<name>}`), so that a room's
/// stream, presence and markers, and the channel its scripts publish to, share one Redis Cluster slot, and every
/// script names only the keys it touches.
///
/// | key | what |
/// |---|---|
/// | `switchboard:{room:<name>}:stream` | the history (a stream), expiring with its last message |
/// | `switchboard:{room:<name>}:epoch` | the history's epoch: made again when the stream was lost |
/// | `switchboard:{room:<name>}:presence` | the members (a sorted set of their JSON, scored by expiry) |
/// | `switchboard:{room:<name>}:counts` | sockets per member (a user, or an anonymous socket): transitions |
/// | `switchboard:{room:<name>}:markers` | leaves waiting for their delay, by member and for the room |
///
/// Two kinds of key are the cluster's, written by single-key commands only, each in ``buckets`` buckets of their
/// own hash tag (`{presence:<n>}`), a room's in the bucket of its slot, so they spread over shards and Redis
/// Cluster nodes: ``presenceRooms(bucket:)`` (rooms with presence, scored by the latest expiry there) and
/// ``dueLeaves(bucket:)`` (leaves waiting for their delay, scored by when they are due). Every node polls every
/// bucket.
package enum RoomKeys {
    /// The room's hash tag: its channel's name.
    package static func tag(_ room: String) -> String { "{\(RoomChannel.name(of: room))}" }

    package static func stream(_ room: String) -> String { "switchboard:\(Self.tag(room)):stream" }
    package static func epoch(_ room: String) -> String { "switchboard:\(Self.tag(room)):epoch" }
    package static func presence(_ room: String) -> String { "switchboard:\(Self.tag(room)):presence" }
    package static func counts(_ room: String) -> String { "switchboard:\(Self.tag(room)):counts" }
    package static func markers(_ room: String) -> String { "switchboard:\(Self.tag(room)):markers" }

    /// How many buckets the cluster-wide keys come in.
    package static let buckets = 16

    /// The bucket of `room`'s entries in the cluster-wide keys.
    package static func bucket(of room: String) -> Int {
        RedisKeyHashing.slot(RoomChannel.name(of: room)) % Self.buckets
    }

    /// Rooms with presence, scored by the latest expiry of anyone stored there: a crashed node's rooms are swept
    /// from it even where no other node has anyone.
    package static func presenceRooms(bucket: Int) -> String { "switchboard:presence:rooms:{presence:\(bucket)}" }
    /// Leaves waiting for their delay (a JSON ``RedisPresence/DueLeave`` each), scored by when they are due; any node
    /// claims them.
    package static func dueLeaves(bucket: Int) -> String { "switchboard:presence:due:{presence:\(bucket)}" }
}
