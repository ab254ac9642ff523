// Thread Sanitizer and the standard library's Mutex on Linux: two threads append to an array under a Mutex, which
// is correct, and TSan reports races, because Mutex locks with a futex it does not see. Why Thread Sanitizer builds
// swap `Locked` for a pthread lock (README "Thread Sanitizer").
//
//     swiftc -sanitize=thread scripts/tsan-mutex/main.swift -o /tmp/tsan-mutex && /tmp/tsan-mutex
import Foundation
import Synchronization

final class Shared: Sendable {
    let values = Mutex<[Int]>([])
}

let shared = Shared()
let threads = (0..<2).map { thread in
    Thread { for value in 0..<200_000 { shared.values.withLock { $0.append(value + thread) } } }
}
threads.forEach { $0.start() }
for thread in threads { while !thread.isFinished { Thread.sleep(forTimeInterval: 0.01) } }
print(shared.values.withLock { $0.count }, "values appended")
