import Glibc

/// A point on CLOCK_MONOTONIC, in nanoseconds. Deadlines never follow wall-clock jumps.
public struct MonotonicInstant: Comparable, Hashable, Sendable {
    public var nanoseconds: UInt64

    public init(nanoseconds: UInt64) { self.nanoseconds = nanoseconds }

    public static func now() -> MonotonicInstant {
        var time = Glibc.timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return MonotonicInstant(nanoseconds: UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec))
    }

    /// `seconds` later, saturating at the end of time (a grace period of 10^10 s must not wrap
    /// into the past, nor trap converting to UInt64). Negative durations count as zero.
    public func advanced(bySeconds seconds: Double) -> MonotonicInstant {
        let delta = max(0, seconds) * 1e9
        guard delta < Double(UInt64.max - nanoseconds) else { return MonotonicInstant(nanoseconds: .max) }
        return MonotonicInstant(nanoseconds: nanoseconds + UInt64(delta))
    }

    /// Milliseconds from `earlier` to this instant (0 when `earlier` is later).
    public func milliseconds(since earlier: MonotonicInstant) -> Double {
        nanoseconds > earlier.nanoseconds ? Double(nanoseconds - earlier.nanoseconds) / 1e6 : 0
    }

    public var asTimespec: Glibc.timespec {
        Glibc.timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
    }

    public static func < (lhs: MonotonicInstant, rhs: MonotonicInstant) -> Bool {
        lhs.nanoseconds < rhs.nanoseconds
    }
}
