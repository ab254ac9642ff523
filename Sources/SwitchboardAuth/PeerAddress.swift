/// What the per-address limits need of an IP address in its text form.
public enum PeerAddress {
    /// Whether `ip` is a loopback address: 127.0.0.0/8, `::1`, or IPv4 loopback mapped into IPv6.
    public static func isLoopback(_ ip: String) -> Bool {
        ip.hasPrefix("127.") || ip == "::1" || ip.hasPrefix("::ffff:127.")
    }
}
