/// Which cgroup v2 files a ``CgroupResources`` becomes, with their exact content. Pure.
///
/// The formulas are the kubelet's and runc/crun/youki's:
/// - `cpu.max` = `<quota> <period>`, period 100000 µs, quota = millicores × period / 1000 floored
///   at 1000 µs; `max 100000` without a limit.
/// - `cpu.weight` from CPU shares (= millicores × 1024 / 1000, at least 2; 2 when there is no
///   request, as the kubelet sends) with the current logarithmic mapping, so 1024 shares → 100.
/// - `memory.max` = bytes or `max`; `memory.swap.max` = 0 with a memory limit (no swap, as the CRI
///   asks), `max` without; `memory.oom.group` = 1: an OOM kill takes the whole container down.
/// - `pids.max` = number or `max`.
public enum CgroupFiles {
    /// The kubelet's CFS period.
    public static let cpuPeriodMicroseconds: Int64 = 100_000
    /// The kubelet's smallest quota.
    public static let minimumQuotaMicroseconds: Int64 = 1000
    /// The kernel's largest CFS quota (`max_cfs_runtime`: 2^44 ns in µs); more is refused with EINVAL.
    public static let maximumQuotaMicroseconds: Int64 = 17_592_186_044
    /// The kubelet's largest CPU shares.
    public static let maximumShares: UInt64 = 262_144

    /// The files to write into a cgroup, in order. Files of controllers that are not enabled are
    /// dropped by the caller.
    public static func files(for resources: CgroupResources, oomGroup: Bool = true) -> [(name: String, value: String)] {
        var files: [(String, String)] = []
        if let cpuset = resources.cpusetCPUs { files.append(("cpuset.cpus", cpuset)) }
        if let cpuset = resources.cpusetMems { files.append(("cpuset.mems", cpuset)) }
        files.append(("cpu.max", cpuMax(resources)))
        let shares = resources.cpuShares ?? cpuShares(milliCPU: resources.cpuRequestMillis)
        files.append(("cpu.weight", String(cpuWeight(shares: shares))))
        files.append(("memory.max", resources.memoryLimitBytes.map(String.init) ?? "max"))
        files.append(("memory.swap.max", swapMax(resources)))
        if oomGroup { files.append(("memory.oom.group", "1")) }
        files.append(("pids.max", resources.pidsLimit.map(String.init) ?? "max"))
        for (size, limit) in resources.hugepageLimits.sorted(by: { $0.key < $1.key }) {
            files.append(("hugetlb.\(size).max", String(limit)))
        }
        for (name, value) in resources.unified.sorted(by: { $0.key < $1.key }) {
            files.append((name, value))
        }
        return files
    }

    /// Only the files of the values that are set: for a cgroup someone else sized first (a
    /// kubelet's pod cgroup), so that nothing it wrote is reset to a default.
    public static func filesOfSetValues(for resources: CgroupResources) -> [(name: String, value: String)] {
        let wanted: [String: Bool] = [
            "cpuset.cpus": resources.cpusetCPUs != nil, "cpuset.mems": resources.cpusetMems != nil,
            "cpu.max": resources.cpuQuotaMicroseconds != nil || resources.cpuLimitMillis != nil,
            "cpu.weight": resources.cpuShares != nil || resources.cpuRequestMillis != nil,
            "memory.max": resources.memoryLimitBytes != nil,
            "memory.swap.max": resources.memorySwapLimitBytes != nil,
            "pids.max": resources.pidsLimit != nil,
        ]
        return files(for: resources, oomGroup: false).filter { wanted[$0.name] ?? true }
    }

    /// `cpu.max`: the CRI's quota and period when sent, else from the limit in millicores.
    public static func cpuMax(_ resources: CgroupResources) -> String {
        let period = resources.cpuPeriodMicroseconds.flatMap { $0 > 0 ? $0 : nil } ?? cpuPeriodMicroseconds
        guard let quota = resources.cpuQuotaMicroseconds else {
            let text = cpuMax(milliCPU: resources.cpuLimitMillis)
            return period == cpuPeriodMicroseconds ? text : text.split(separator: " ")[0] + " \(period)"
        }
        if quota <= 0 { return "max \(period)" }
        return "\(min(max(quota, minimumQuotaMicroseconds), maximumQuotaMicroseconds)) \(period)"
    }

    /// `memory.swap.max` (swap alone in v2): the CRI's memory+swap minus the memory limit; none
    /// with a memory limit and no swap limit said (the CRI's rule: no swap); `max` otherwise.
    public static func swapMax(_ resources: CgroupResources) -> String {
        guard let memory = resources.memoryLimitBytes else {
            return resources.memorySwapLimitBytes.map { $0 > 0 ? String($0) : "max" } ?? "max"
        }
        guard let total = resources.memorySwapLimitBytes, total != 0 else { return "0" }
        if total < 0 { return "max" }
        return String(max(0, total - memory))
    }

    /// `cpu.max` for a CPU limit in millicores.
    public static func cpuMax(milliCPU: Int64?) -> String {
        guard let milliCPU, milliCPU > 0 else { return "max \(cpuPeriodMicroseconds)" }
        let (product, overflow) = milliCPU.multipliedReportingOverflow(by: cpuPeriodMicroseconds)
        let quota = overflow ? maximumQuotaMicroseconds : min(product / 1000, maximumQuotaMicroseconds)
        return "\(max(quota, minimumQuotaMicroseconds)) \(cpuPeriodMicroseconds)"
    }

    /// CPU shares for a request in millicores, as the kubelet computes them (2…262144).
    public static func cpuShares(milliCPU: Int64?) -> UInt64 {
        guard let milliCPU, milliCPU > 0 else { return 2 }
        let (product, overflow) = milliCPU.multipliedReportingOverflow(by: 1024)
        let shares = overflow ? maximumShares : UInt64(product / 1000)
        return min(max(shares, 2), maximumShares)
    }

    /// cgroup v2 `cpu.weight` (1…10000) for CPU shares (2…262144), the logarithmic formula of
    /// runc ≥ 1.3, crun and youki: 1024 shares → 100. (The older linear formula gave 39 and is
    /// considered a bug, runc#4772.)
    public static func cpuWeight(shares: UInt64) -> UInt64 {
        if shares == 0 { return 100 }
        if shares <= 2 { return 1 }
        if shares >= 262_144 { return 10_000 }
        let l = log2(Double(shares))
        let exponent = (l * l + 125 * l) / 612.0 - 7.0 / 34.0
        return UInt64(pow(10.0, exponent).rounded(.up))
    }
}

#if canImport(Glibc)
import Glibc
#endif
