import Histogram

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// CLOCK_MONOTONIC in nanoseconds: the clock every timed region reads (one vDSO call, no allocation).
@inline(__always)
func monotonicNanoseconds() -> UInt64 {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
}

/// Latency histograms by name (an RPC, a cycle, a start-path stage), in the order the names were
/// first seen. Values are nanoseconds, kept to 3 significant digits. One owner at a time: a
/// concurrent benchmark gives each worker its own book and merges them at the end.
struct LatencyBook: Sendable {
    struct Entry: Sendable {
        let name: String
        /// Nil for a name the runtime answered UNIMPLEMENTED, or that failed (`error`).
        var histogram: Histogram<UInt64>?
        /// `<code>: <message>` of a failed read-only RPC (its other calls are not kept).
        var error: String?
        /// The daemon's mean CPU time per call (µs) over the timed calls, when measured.
        var serverCPUMicroseconds: Double?
    }

    private(set) var entries: [Entry] = []
    private var slots: [String: Int] = [:]
    /// The sum of every value recorded here (not merged in): a cycle's time as the sum of its RPCs.
    private(set) var total: UInt64 = 0
    /// False for a book that keeps nothing (teardown's calls).
    private let keeps: Bool

    init() { keeps = true }

    private init(keeps: Bool) { self.keeps = keeps }

    /// A book that records nothing.
    static var discarding: LatencyBook { LatencyBook(keeps: false) }

    /// Nanoseconds to 3 significant digits, sized for up to 10 s (≈200 KB) so that recording
    /// never reallocates; it grows for a longer outlier.
    static func emptyHistogram() -> Histogram<UInt64> {
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 10_000_000_000, numberOfSignificantValueDigits: .three)
        histogram.autoResize = true
        return histogram
    }

    mutating func record(_ name: String, nanoseconds: UInt64) {
        guard keeps else { return }
        let slot = self.slot(name)
        if entries[slot].histogram == nil { entries[slot].histogram = Self.emptyHistogram() }
        entries[slot].histogram!.record(nanoseconds)
        total &+= nanoseconds
    }

    /// Records the time from `start` (a `monotonicNanoseconds()` reading) to now.
    mutating func record(_ name: String, since start: UInt64) {
        record(name, nanoseconds: monotonicNanoseconds() &- start)
    }

    /// Keeps `name`'s place and says the runtime does not implement it.
    mutating func markUnimplemented(_ name: String) {
        let slot = self.slot(name)
        entries[slot].histogram = nil
        entries[slot].error = nil
        entries[slot].serverCPUMicroseconds = nil
    }

    /// Keeps `name`'s place and says it failed: `error` is `<code>: <message>`.
    mutating func markFailed(_ name: String, error: String) {
        let slot = self.slot(name)
        entries[slot].histogram = nil
        entries[slot].error = error
        entries[slot].serverCPUMicroseconds = nil
    }

    /// The daemon's mean CPU per call of `name`, in µs.
    mutating func setServerCPU(_ name: String, microseconds: Double) {
        let slot = self.slot(name)
        entries[slot].serverCPUMicroseconds = microseconds
    }

    /// Adds `other`'s values; names new to this book go after its own, in `other`'s order.
    mutating func merge(_ other: LatencyBook) {
        for entry in other.entries {
            let slot = self.slot(entry.name)
            guard let theirs = entry.histogram else { continue }
            if entries[slot].histogram == nil { entries[slot].histogram = theirs } else { entries[slot].histogram!.add(theirs) }
        }
    }

    func histogram(_ name: String) -> Histogram<UInt64>? {
        slots[name].flatMap { entries[$0].histogram }
    }

    private mutating func slot(_ name: String) -> Int {
        if let slot = slots[name] { return slot }
        entries.append(Entry(name: name, histogram: nil))
        slots[name] = entries.count - 1
        return entries.count - 1
    }
}

/// The summary of one histogram, in nanoseconds.
struct LatencyStats: Equatable, Sendable {
    let count: UInt64
    let min: UInt64
    let p50: UInt64
    let p90: UInt64
    let p99: UInt64
    let max: UInt64
    let mean: Double

    init(_ histogram: Histogram<UInt64>) {
        count = histogram.totalCount
        min = histogram.min
        p50 = histogram.valueAtPercentile(50)
        p90 = histogram.valueAtPercentile(90)
        p99 = histogram.valueAtPercentile(99)
        max = histogram.maxRecorded
        mean = histogram.mean
    }

    /// `{"count":…,"min_us":…,"p50_us":…,"p90_us":…,"p99_us":…,"max_us":…,"mean_us":…}`, in
    /// microseconds to 0.1.
    var json: BenchJSON {
        .object([
            ("count", .int(Int64(count))),
            ("min_us", .microseconds(min)), ("p50_us", .microseconds(p50)), ("p90_us", .microseconds(p90)),
            ("p99_us", .microseconds(p99)), ("max_us", .microseconds(max)),
            ("mean_us", .number((mean / 100).rounded() / 10)),
        ])
    }
}
