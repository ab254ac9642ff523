#if canImport(Glibc)
    import Glibc
#endif

/// The process's CPU time, memory and descriptors, as Prometheus's `process_` metrics report them; read from
/// `/proc/self` (Linux). `nil` where `/proc` is not there.
struct ProcessStatistics {
    var cpuSeconds: Double
    var residentBytes: Int
    var virtualBytes: Int
    var openFileDescriptors: Int
    var maxFileDescriptors: Int
    /// Seconds since the epoch.
    var startTime: Double

    static func read() -> ProcessStatistics? {
        #if os(Linux)
            guard let stat = Self.contents(of: "/proc/self/stat"), let system = Self.contents(of: "/proc/stat"),
                let fields = Self.fields(ofStat: stat)
            else { return nil }
            let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
            let pageSize = sysconf(Int32(_SC_PAGESIZE))
            // Fields after the command name, from field 3 (state): utime is 14, stime 15, starttime 22, vsize 23,
            // rss 24 (proc(5)); index = field - 3.
            guard fields.count > 21, let utime = Double(fields[11]), let stime = Double(fields[12]),
                let started = Double(fields[19]), let virtual = Int(fields[20]), let pages = Int(fields[21]),
                let bootLine = system.split(separator: "\n").first(where: { $0.hasPrefix("btime ") }),
                let boot = Double(bootLine.dropFirst(6).trimmingPrefix(" "))
            else { return nil }
            var limit = rlimit()
            let maxFiles = getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 ? Int(limit.rlim_cur) : 0
            return ProcessStatistics(
                cpuSeconds: (utime + stime) / ticks,
                residentBytes: pages * pageSize,
                virtualBytes: virtual,
                openFileDescriptors: Self.openFileDescriptors(),
                maxFileDescriptors: maxFiles,
                startTime: boot + started / ticks)
        #else
            return nil
        #endif
    }

    #if os(Linux)
        /// `/proc/self/stat`'s fields after `(comm)`, which may itself hold spaces and parentheses.
        private static func fields(ofStat stat: String) -> [Substring]? {
            guard let close = stat.lastIndex(of: ")") else { return nil }
            return stat[stat.index(after: close)...].split(separator: " ")
        }

        /// A small `/proc` file, whole (they report a size of 0, so read until the end).
        private static func contents(of path: String) -> String? {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0 else { return nil }
            defer { close(descriptor) }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while bytes.count < 1 << 20 {
                let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
                guard count > 0 else { break }
                bytes += chunk[..<count]
            }
            return String(decoding: bytes, as: UTF8.self)
        }

        /// The entries of `/proc/self/fd`, less the one the listing itself opens.
        private static func openFileDescriptors() -> Int {
            guard let directory = opendir("/proc/self/fd") else { return 0 }
            defer { closedir(directory) }
            var count = 0
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) {
                    String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != "." && name != ".." { count += 1 }
            }
            return max(0, count - 1)
        }
    #endif
}
