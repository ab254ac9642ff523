import NIOCore
import SwitchboardWebSocket
import Synchronization

/// The members of one topic on one event loop, grouped by frame encoding; touched only on that loop.
final class TopicLoop: Sendable {
    /// Members that share frames: the same encoding.
    struct Bucket {
        let encoding: FrameEncoding
        var members: [ObjectIdentifier: TopicMembership] = [:]
    }

    final class Members {
        /// Usually one bucket (every socket negotiated the same thing), at most a few.
        var buckets: [Bucket] = []
        /// Reservations made for this loop and not attached yet; usually none.
        var held: [ObjectIdentifier: HeldMessages] = [:]
    }

    let topic: TopicState
    let fanOut: LoopFanOut
    private let members: NIOLoopBoundBox<Members>

    init(topic: TopicState, fanOut: LoopFanOut) {
        self.topic = topic
        self.fanOut = fanOut
        self.members = .makeBoxSendingValue(Members(), eventLoop: fanOut.eventLoop)
    }

    /// Adds `member` (on the loop).
    func add(_ member: TopicMembership, encoding: FrameEncoding) {
        let members = self.members.value
        if let index = members.buckets.firstIndex(where: { $0.encoding == encoding }) {
            members.buckets[index].members[ObjectIdentifier(member)] = member
        } else {
            var bucket = Bucket(encoding: encoding)
            bucket.members[ObjectIdentifier(member)] = member
            members.buckets.append(bucket)
        }
        self.topic.memberAdded()
    }

    /// Removes `member` (on the loop).
    func remove(_ member: TopicMembership) {
        let members = self.members.value
        for index in members.buckets.indices
        where members.buckets[index].members.removeValue(forKey: ObjectIdentifier(member)) != nil {
            self.topic.memberRemoved()
            return
        }
    }

    /// Starts holding what this loop delivers for a reservation (on the loop).
    func addHeld(_ held: HeldMessages) {
        self.members.value.held[ObjectIdentifier(held)] = held
    }

    /// Stops holding for a reservation (on the loop): it attached, or was released.
    func removeHeld(_ held: HeldMessages) {
        self.members.value.held.removeValue(forKey: ObjectIdentifier(held))
    }

    /// Sends `batch` to every member: frames resolved once per encoding, the same buffers to each member.
    func deliver(_ batch: [PreparedMessage]) {
        // A snapshot: a member that leaves during the pass (its socket closed on a write) does not disturb it.
        let members = self.members.value
        let buckets = members.buckets
        var deliveries = 0
        var bytes = 0
        for bucket in buckets where !bucket.members.isEmpty {
            let frames = PreparedFrames(batch, encoding: bucket.encoding)
            for member in bucket.members.values { member.receive(frames) }
            deliveries += bucket.members.count * frames.count
            bytes += bucket.members.count * frames.wireSize
        }
        if deliveries > 0 {
            // Once per batch and loop, not per socket: the counters cost nothing a recipient would notice.
            self.fanOut.counters.deliveries.wrappingAdd(deliveries, ordering: .relaxed)
            self.fanOut.counters.deliveredBytes.wrappingAdd(bytes, ordering: .relaxed)
        }
        if !members.held.isEmpty {
            for held in members.held.values { held.hold(batch) }
        }
    }

    /// Tells every member that messages may have been lost.
    func deliverGap() {
        let members = self.members.value
        for bucket in members.buckets {
            for member in bucket.members.values { member.receiveGap() }
        }
        for held in members.held.values { held.holdGap() }
    }
}
