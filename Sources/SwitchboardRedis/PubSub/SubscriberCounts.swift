/// How many local subscribers each channel has: the first one subscribes at Redis, the last one to leave
/// unsubscribes. One definition for the plain and the cluster subscriber connections.
struct SubscriberCounts {
    private var counts: [String: Int] = [:]

    /// The channels with at least one local subscriber.
    var channels: Dictionary<String, Int>.Keys { self.counts.keys }
    var isEmpty: Bool { self.counts.isEmpty }
    var count: Int { self.counts.count }

    /// Counts a subscriber of `channel` in; how many it has now (1: subscribe at Redis).
    mutating func add(_ channel: String) -> Int {
        let count = self.counts[channel, default: 0] + 1
        self.counts[channel] = count
        return count
    }

    /// Counts a subscriber of `channel` out; whether it was the last (then unsubscribe at Redis). A channel with no
    /// subscriber is left as it is.
    mutating func remove(_ channel: String) -> Bool {
        guard let count = self.counts[channel] else { return false }
        self.counts[channel] = count > 1 ? count - 1 : nil
        return count == 1
    }
}
