/// Channel names that clients subscribe to and keys publish to: 1 to 128 bytes of letters, digits and `-_.:`; they
/// are broker (Redis) channel names as they are.
public enum ChannelName {
    /// Whether `name` is a valid channel name.
    public static func isValid(_ name: String) -> Bool {
        isName(name, maxLength: 128, alsoAllowing: UInt8(ascii: ":"))
    }

    /// `switchboard:…`: the nodes' own channels (cluster surveys), which clients neither read nor publish to.
    public static func isReserved(_ name: String) -> Bool {
        name.hasPrefix("switchboard:")
    }

    /// Whether `name` is 1 to `maxLength` bytes of ASCII letters, digits, `-`, `_`, `.` and the `extra` bytes.
    public static func isName(_ name: String, maxLength: Int, alsoAllowing extra: UInt8...) -> Bool {
        guard !name.isEmpty, name.utf8.count <= maxLength else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
                true
            default:
                extra.contains(byte)
            }
        }
    }
}

extension ChannelPattern {
    /// `*`: every channel.
    public static let every = ChannelPattern("*")!
}
