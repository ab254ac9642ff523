import SwitchboardRedis

/// `--redis` URLs: `redis://` and `rediss://`, credentials with percent escapes, IPv6 hosts, ports, databases.
/// Besides not crashing, a password must never appear in the description or an error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRedisURL(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let url = String(decoding: UnsafeBufferPointer(start: start, count: count), as: UTF8.self)
    do {
        let configuration = try RedisConfiguration(url: url)
        // The description must not depend on the password at all (a search for the password's text in it would
        // also find a host that happens to contain it).
        var other = configuration
        other.password = configuration.password.map { _ in "another password" }
        guard other.description == configuration.description else { fatalError("the description shows the password") }
    } catch {
        _ = error.description
    }
    return 0
}
