import Glibc

/// CLOCK_REALTIME in nanoseconds since the epoch: the timestamps the CRI and statuses report.
/// (Deadlines use ``MonotonicInstant``.)
public enum WallClock {
    public static func nanoseconds() -> Int64 {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec)
    }
}
