/// The HTTP version of a request, as it appeared on the request line.
public struct HTTPVersion: Sendable, Hashable, CustomStringConvertible {
    /// The major version (`1` for HTTP/1.1).
    public var major: Int
    /// The minor version (`1` for HTTP/1.1).
    public var minor: Int

    /// Creates a version from its two numbers.
    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    /// HTTP/1.0.
    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    /// HTTP/1.1.
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    /// `HTTP/1.1`, as written on a status line.
    public var description: String { "HTTP/\(self.major).\(self.minor)" }
}
