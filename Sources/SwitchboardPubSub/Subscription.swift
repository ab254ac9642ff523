import SwitchboardLocks

/// An active subscription. It ends when ``cancel()`` is called or when it is released.
public final class Subscription: Sendable {
    private let onCancel: Locked<(@Sendable () -> Void)?>

    /// Creates a subscription that runs `onCancel` once when it ends; used by brokers.
    public init(onCancel: @escaping @Sendable () -> Void) {
        self.onCancel = Locked(onCancel)
    }

    /// Ends the subscription; later calls do nothing.
    public func cancel() {
        let onCancel = self.onCancel.withLock { callback -> (@Sendable () -> Void)? in
            defer { callback = nil }
            return callback
        }
        onCancel?()
    }

    /// Whether the subscription has ended.
    public var isCancelled: Bool { self.onCancel.withLock { $0 == nil } }

    deinit {
        self.cancel()
    }
}
