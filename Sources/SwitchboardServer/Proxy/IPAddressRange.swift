public import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

/// An IP address or a CIDR range (`10.0.0.0/8`, `127.0.0.1`, `::1`, `fd00::/8`): which peers are trusted proxies.
public struct IPAddressRange: Sendable, Hashable, CustomStringConvertible {
    /// The network's address bytes (4 or 16).
    private let network: [UInt8]
    /// How many leading bits must match.
    private let prefixLength: Int

    /// Parses an address or `address/prefix`; `nil` when it is neither.
    public init?(_ text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = Self.bytes(of: String(parts[0])) else { return nil }
        let maximum = bytes.count * 8
        var prefix = maximum
        if parts.count == 2 {
            guard let length = Int(parts[1]), (0...maximum).contains(length), parts[1].allSatisfy(\.isASCII) else {
                return nil
            }
            prefix = length
        }
        self.network = bytes
        self.prefixLength = prefix
    }

    /// Whether `address` is in the range (an IPv4 address written as IPv6, `::ffff:a.b.c.d`, counts as IPv4).
    public func contains(_ address: SocketAddress) -> Bool {
        guard let text = address.ipAddress, let bytes = Self.bytes(of: text) else { return false }
        return self.contains(bytes: bytes)
    }

    /// Whether the address written as `text` is in the range.
    public func contains(address text: some StringProtocol) -> Bool {
        guard let bytes = Self.bytes(of: String(text)) else { return false }
        return self.contains(bytes: bytes)
    }

    private func contains(bytes: [UInt8]) -> Bool {
        guard bytes.count == self.network.count else { return false }
        var bits = self.prefixLength
        for (mine, theirs) in zip(self.network, bytes) where bits > 0 {
            let mask: UInt8 = bits >= 8 ? 0xFF : ~(0xFF >> UInt8(bits))
            if mine & mask != theirs & mask { return false }
            bits -= 8
        }
        return true
    }

    public var description: String {
        let address = (try? SocketAddress(packedIPAddress: ByteBuffer(bytes: self.network), port: 0))?.ipAddress ?? "?"
        return self.prefixLength == self.network.count * 8 ? address : "\(address)/\(self.prefixLength)"
    }

    /// An address's bytes: 4 for IPv4 (IPv4-mapped IPv6 included), 16 for IPv6; `nil` if it is not an address.
    static func bytes(of text: String) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, text, &bytes) == 1 { return Array(bytes[0..<4]) }
        guard inet_pton(AF_INET6, text, &bytes) == 1 else { return nil }
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return Array(bytes[12...])
        }
        return bytes
    }
}
