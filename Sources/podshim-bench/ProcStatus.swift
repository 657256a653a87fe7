#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Threads and resident memory of the daemon (summed over its pids), from /proc/PID/status.
struct ProcSnapshot: Equatable, Sendable {
    var threads: Int
    var rssKB: Int

    static let zero = ProcSnapshot(threads: 0, rssKB: 0)

    /// The larger of each field.
    func peak(with other: ProcSnapshot) -> ProcSnapshot {
        ProcSnapshot(threads: Swift.max(threads, other.threads), rssKB: Swift.max(rssKB, other.rssKB))
    }

    /// `Threads:` and `VmRSS:` (kB) of one /proc/PID/status text; nil if either is missing.
    static func parse(status text: String) -> ProcSnapshot? {
        var threads: Int?
        var rss: Int?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("Threads:") {
                threads = Int(line.dropFirst("Threads:".count).trimmingSpaces())
            } else if line.hasPrefix("VmRSS:") {
                var value = line.dropFirst("VmRSS:".count).trimmingSpaces()
                if value.hasSuffix("kB") { value = value.dropLast(2).trimmingSpaces() }
                rss = Int(value)
            }
        }
        guard let threads, let rss else { return nil }
        return ProcSnapshot(threads: threads, rssKB: rss)
    }

    /// The sum over `pids`; nil if any of them cannot be read (gone, or not a process).
    static func read(pids: [Int32]) -> ProcSnapshot? {
        var sum = ProcSnapshot.zero
        for pid in pids {
            guard let text = readFile("/proc/\(pid)/status"), let one = parse(status: text) else { return nil }
            sum.threads += one.threads
            sum.rssKB += one.rssKB
        }
        return sum
    }

    static func readFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { return nil }
            if count == 0 { break }
            bytes.append(contentsOf: buffer[..<count])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// CPU time (utime + stime, clock ticks) of the daemon, summed over its pids, from
/// /proc/PID/stat: its threads' time, not its children's.
enum ProcCPU {
    /// Clock ticks a second (sysconf(_SC_CLK_TCK)), 100 on Linux.
    static let ticksPerSecond: Int = {
        let ticks = sysconf(Int32(_SC_CLK_TCK))
        return ticks > 0 ? ticks : 100
    }()

    /// utime + stime of one /proc/PID/stat text: fields 14 and 15, counted after the `)` that
    /// ends the command name (which may hold spaces and parentheses).
    static func parse(stat text: String) -> Int? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        // From field 3 (state) on.
        let fields = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count > 12, let utime = Int(fields[11]), let stime = Int(fields[12]) else { return nil }
        return utime + stime
    }

    /// The sum over `pids` in clock ticks; nil if any cannot be read.
    static func read(pids: [Int32]) -> Int? {
        var sum = 0
        for pid in pids {
            guard let text = ProcSnapshot.readFile("/proc/\(pid)/stat"), let ticks = parse(stat: text) else { return nil }
            sum += ticks
        }
        return sum
    }

    static func microseconds(ticks: Int) -> Double {
        Double(ticks) * 1_000_000 / Double(ticksPerSecond)
    }
}

/// The daemon's CPU time over the timed stretches of a batch of calls: paused while the session
/// renews its connection (the accept and the untimed Version are not the RPC's cost).
struct ServerCPUMeter {
    let pids: [Int32]
    private var ticks = 0
    private var since: Int?
    /// False once a reading failed (a pid gone): no figure then.
    private(set) var valid = true

    init(pids: [Int32]) { self.pids = pids }

    /// Counting (resumed, not paused since).
    var running: Bool { since != nil }

    mutating func resume() {
        since = read()
    }

    mutating func pause() {
        if let since, let now = read() { ticks += now - since }
        since = nil
    }

    /// µs per call over `calls` calls, or nil (no pids, a reading failed).
    mutating func finish(calls: Int) -> Double? {
        pause()
        guard valid, !pids.isEmpty, calls > 0 else { return nil }
        return ProcCPU.microseconds(ticks: ticks) / Double(calls)
    }

    private mutating func read() -> Int? {
        guard valid, !pids.isEmpty else { return nil }
        guard let now = ProcCPU.read(pids: pids) else {
            valid = false
            return nil
        }
        return now
    }
}

/// Samples the daemon every 100 ms until cancelled; its value is the peak it saw.
func sampleProcPeak(pids: [Int32], every interval: Duration = .milliseconds(100)) -> Task<ProcSnapshot, Never> {
    Task {
        var peak = ProcSnapshot.zero
        while !Task.isCancelled {
            if let now = ProcSnapshot.read(pids: pids) { peak = peak.peak(with: now) }
            try? await Task.sleep(for: interval)
        }
        return peak
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> Substring {
        var value = self
        while let first = value.first, first == " " || first == "\t" { value.removeFirst() }
        while let last = value.last, last == " " || last == "\t" { value.removeLast() }
        return value
    }
}
