/// Waits until `condition` holds, up to `timeout`; returns whether it does.
@discardableResult
public func eventually(
    timeout: Duration = .seconds(5),
    _ condition: @Sendable () async throws -> Bool
) async rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return try await condition()
}
