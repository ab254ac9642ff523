import NIOCore
public import NIOPosix

#if canImport(Glibc)
    import Glibc
#endif

extension Server {
    /// How many cores this process may run on: NIO's count (online CPUs, cgroup quotas) further limited by the CPU
    /// affinity mask, which `taskset` and container runtimes set and NIO does not read.
    ///
    /// Running more event loops than usable cores makes loops time-slice one core, which shows as tail latency.
    public static var usableCoreCount: Int {
        max(min(System.coreCount, self.affinityCoreCount ?? .max), 1)
    }

    /// An event loop group with one loop per usable core (see ``usableCoreCount``), for executables; shut it down
    /// (or let the process end) when done.
    public static func makeEventLoopGroup() -> MultiThreadedEventLoopGroup {
        MultiThreadedEventLoopGroup(numberOfThreads: self.usableCoreCount)
    }

    /// The number of CPUs in this process's affinity mask, from the `Cpus_allowed` line of `/proc/self/status`
    /// (`sched_getaffinity` is not visible to Swift without `_GNU_SOURCE`); `nil` where that is not available.
    static var affinityCoreCount: Int? {
        #if os(Linux)
            guard let file = fopen("/proc/self/status", "r") else { return nil }
            defer { fclose(file) }
            var line = [CChar](repeating: 0, count: 4096)
            while fgets(&line, Int32(line.count), file) != nil {
                let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                guard text.hasPrefix("Cpus_allowed:") else { continue }
                let mask = text.dropFirst("Cpus_allowed:".count)
                let count = mask.reduce(0) { total, character in total + (character.hexDigitValue?.nonzeroBitCount ?? 0)
                }
                return count > 0 ? count : nil
            }
        #endif
        return nil
    }
}
