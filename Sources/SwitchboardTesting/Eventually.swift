import Foundation

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

/// Whether load tests run at full scale (`SWITCHBOARD_FULL_SCALE=1`, as `.ci/run` does in a step of their own) or
/// small (the default: the same behaviours in seconds, without starving timing-sensitive tests run alongside).
public let fullScale = ProcessInfo.processInfo.environment["SWITCHBOARD_FULL_SCALE"] == "1"

/// `full` when running at full scale, else `small`.
public func scaled(_ small: Int, full: Int) -> Int { fullScale ? full : small }
