/// Which primary owns each of Redis Cluster's 16,384 slots, read from `CLUSTER SHARDS` (Redis 7) or, on an older
/// server, `CLUSTER SLOTS`.
public struct ClusterTopology: Sendable, Equatable {
    /// A primary: where it listens, and its node id.
    public struct Node: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int
        public var id: String

        public var description: String {
            self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
        }
    }

    /// The primaries, each once.
    public private(set) var primaries: [Node] = []
    /// Slot → index in ``primaries``; -1 for a slot no primary serves (the cluster is not whole).
    private var owners = [Int16](repeating: -1, count: RedisKeyHashing.slotCount)

    public init() {}

    /// The primary that owns `slot`, if any.
    public func owner(of slot: Int) -> Node? {
        let index = Int(self.owners[slot])
        return index >= 0 ? self.primaries[index] : nil
    }

    /// The slots `node` owns.
    public func slots(of node: Node) -> [Int] {
        guard let index = self.primaries.firstIndex(of: node) else { return [] }
        return (0..<RedisKeyHashing.slotCount).filter { Int(self.owners[$0]) == index }
    }

    /// Whether every slot has a primary.
    public var coversAllSlots: Bool { !self.owners.contains(-1) }

    /// Records that `node` owns `slot` (a `MOVED` said so).
    public mutating func assign(_ slot: Int, to node: Node) {
        let index: Int
        if let known = self.primaries.firstIndex(where: { $0.host == node.host && $0.port == node.port }) {
            index = known
        } else {
            self.primaries.append(node)
            index = self.primaries.count - 1
        }
        self.owners[slot] = Int16(index)
    }

    private mutating func assign(_ range: ClosedRange<Int>, to node: Node) {
        for slot in range where (0..<RedisKeyHashing.slotCount).contains(slot) { self.assign(slot, to: node) }
    }

    /// Parses a `CLUSTER SHARDS` reply: for each shard its `slots` (start, end pairs) and `nodes` (maps of `ip`,
    /// `endpoint`, `port`/`tls-port`, `id`, `role`, `health`); the primary that is `online` owns the slots.
    /// `nil` when the reply does not have that shape.
    public static func fromShards(_ reply: RESPValue) -> ClusterTopology? {
        guard let shards = reply.elements else { return nil }
        var topology = ClusterTopology()
        for shard in shards {
            let fields = Self.fields(shard)
            guard let slotValues = fields["slots"]?.elements, let nodes = fields["nodes"]?.elements else { return nil }
            let bounds = slotValues.compactMap(Self.integer)
            guard bounds.count == slotValues.count, bounds.count % 2 == 0 else { return nil }
            let primary = nodes.map(Self.fields).first { node in
                node["role"]?.string == "master" && (node["health"]?.string ?? "online") == "online"
            }
            guard let primary else { continue }  // a shard without a healthy primary serves nothing now
            let endpoint = primary["endpoint"]?.string
            let host = endpoint.flatMap { $0.isEmpty || $0 == "?" ? nil : $0 } ?? primary["ip"]?.string ?? ""
            guard !host.isEmpty,
                let port = primary["port"].flatMap(Self.integer) ?? primary["tls-port"].flatMap(Self.integer)
            else { return nil }
            let node = Node(host: host, port: port, id: primary["id"]?.string ?? "")
            for pair in stride(from: 0, to: bounds.count, by: 2) where bounds[pair] <= bounds[pair + 1] {
                topology.assign(bounds[pair]...bounds[pair + 1], to: node)
            }
        }
        return topology
    }

    /// Parses a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id], replicas…], …]`.
    public static func fromSlots(_ reply: RESPValue) -> ClusterTopology? {
        guard let ranges = reply.elements else { return nil }
        var topology = ClusterTopology()
        for range in ranges {
            guard let parts = range.elements, parts.count >= 3, let start = Self.integer(parts[0]),
                let end = Self.integer(parts[1]), let primary = parts[2].elements, primary.count >= 2,
                let host = primary[0].string, let port = Self.integer(primary[1]), start <= end
            else { return nil }
            let id = primary.count > 2 ? primary[2].string ?? "" : ""
            topology.assign(start...end, to: Node(host: host, port: port, id: id))
        }
        return topology
    }

    /// A RESP2 flat key/value array or a RESP3 map, as a dictionary of its string keys.
    private static func fields(_ value: RESPValue) -> [String: RESPValue] {
        var fields: [String: RESPValue] = [:]
        switch value {
        case .map(let pairs):
            for pair in pairs { if let key = pair.key.string { fields[key] = pair.value } }
        default:
            let elements = value.elements ?? []
            for index in stride(from: 0, to: elements.count - 1, by: 2) {
                if let key = elements[index].string { fields[key] = elements[index + 1] }
            }
        }
        return fields
    }

    private static func integer(_ value: RESPValue) -> Int? {
        switch value {
        case .integer(let number): Int(number)
        default: value.string.flatMap { Int($0) }
        }
    }
}

/// A `MOVED` or `ASK` redirection in an error reply: `MOVED 3999 127.0.0.1:6381`.
struct ClusterRedirection: Equatable {
    enum Kind { case moved, ask }
    var kind: Kind
    var slot: Int
    var host: String
    var port: Int

    init(kind: Kind, slot: Int, host: String, port: Int) {
        self.kind = kind
        self.slot = slot
        self.host = host
        self.port = port
    }

    init?(_ error: any Error) {
        guard let error = error as? RedisError, error.kind == .serverError else { return nil }
        let words = error.message.split(separator: " ")
        guard words.count == 3, let slot = Int(words[1]), let colon = words[2].lastIndex(of: ":"),
            let port = Int(words[2][words[2].index(after: colon)...])
        else { return nil }
        switch words[0] {
        case "MOVED": self.kind = .moved
        case "ASK": self.kind = .ask
        default: return nil
        }
        self.slot = slot
        var host = String(words[2][..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        self.host = host
        self.port = port
    }
}
