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
    /// `memory.stat`: inactive_file, anon, pgfault, pgmajfault (empty without the memory controller).
    public var memoryStat: [String: Int64] = [:]
    /// `memory.max`; nil for `max` or without the memory controller.
    public var memoryLimitBytes: Int64?
    /// `pids.current`: tasks in the cgroup and below.
    public var pids: Int64?

    /// What the kubelet evicts on: usage minus inactive file pages, never negative.
    public var workingSetBytes: Int64? {
        guard let current = memoryCurrentBytes else { return nil }
        return max(0, current - (memoryStat["inactive_file"] ?? 0))
    }

    /// The limit minus the working set, when there is a limit.
    public var availableBytes: Int64? {
        guard let limit = memoryLimitBytes, let workingSet = workingSetBytes else { return nil }
        return max(0, limit - workingSet)
    }

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

    /// Everything the CRI's stats report: the usage files plus memory.stat, memory.max and pids.current.
    public static func readForStats(_ cgroup: Cgroup) -> CgroupUsage {
        var usage = read(cgroup)
        usage.memoryStat = cgroup.keyedValues("memory.stat")
        usage.memoryLimitBytes = cgroup.number("memory.max")
        usage.pids = cgroup.number("pids.current")
        return usage
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
