/// What a container used, read from its cgroup when it ends (before the cgroup is removed).
public struct CgroupUsage: Equatable, Sendable {
    /// `cpu.stat usage_usec`.
    public var cpuMicroseconds: Int64?
    /// `memory.current`.
    public var memoryCurrentBytes: Int64?
    /// `memory.peak` (Linux ≥ 5.19).
    public var memoryPeakBytes: Int64?
    /// `memory.events oom_kill`: processes the kernel killed for exceeding memory.max.
    public var oomKills: Int64
    /// `cpu.stat nr_throttled`: periods in which the CPU limit held the cgroup back.
    public var throttledPeriods: Int64?

    public init(cpuMicroseconds: Int64? = nil, memoryCurrentBytes: Int64? = nil, memoryPeakBytes: Int64? = nil,
                oomKills: Int64 = 0, throttledPeriods: Int64? = nil) {
        self.cpuMicroseconds = cpuMicroseconds
        self.memoryCurrentBytes = memoryCurrentBytes
        self.memoryPeakBytes = memoryPeakBytes
        self.oomKills = oomKills
        self.throttledPeriods = throttledPeriods
    }

    /// Reads the usage files of `cgroup`; a file that is missing leaves its field nil.
    public static func read(_ cgroup: Cgroup) -> CgroupUsage {
        let cpu = cgroup.keyedValues("cpu.stat")
        return CgroupUsage(
            cpuMicroseconds: cpu["usage_usec"],
            memoryCurrentBytes: cgroup.number("memory.current"),
            memoryPeakBytes: cgroup.number("memory.peak"),
            oomKills: cgroup.keyedValues("memory.events")["oom_kill"] ?? 0,
            throttledPeriods: cpu["nr_throttled"])
    }

    /// `cpu 12.3 ms, memory peak 1.2 MiB` (only what is known).
    public var summary: String {
        var parts: [String] = []
        if let cpu = cpuMicroseconds { parts.append("cpu \(format(Double(cpu) / 1000)) ms") }
        if let peak = memoryPeakBytes ?? memoryCurrentBytes {
            parts.append("memory \(memoryPeakBytes != nil ? "peak " : "")\(format(Double(peak) / 1_048_576)) MiB")
        }
        return parts.joined(separator: ", ")
    }

    private func format(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        return "\(Int(tenths) / 10).\(Int(tenths) % 10)"
    }
}
