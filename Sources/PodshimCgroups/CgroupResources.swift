/// The limits podshim puts on one cgroup, in the units of the CRI (independent of the manifest).
public struct CgroupResources: Equatable, Sendable {
    /// CPU limit in millicores (`100m` = 100); nil = no limit.
    public var cpuLimitMillis: Int64?
    /// CPU request in millicores; nil = none (the kubelet then sends the minimum shares).
    public var cpuRequestMillis: Int64?
    /// Memory limit in bytes; nil = no limit.
    public var memoryLimitBytes: Int64?
    /// Maximum number of tasks; nil = no limit.
    public var pidsLimit: Int64?

    // The CRI's own values, written as sent when present (they win over the millicore forms).
    /// CFS period in µs (CRI cpu_period); nil = 100000.
    public var cpuPeriodMicroseconds: Int64?
    /// CFS quota in µs (CRI cpu_quota); -1 = no limit; nil = from ``cpuLimitMillis``.
    public var cpuQuotaMicroseconds: Int64?
    /// CPU shares (CRI cpu_shares, 2…262144); nil = from ``cpuRequestMillis``.
    public var cpuShares: UInt64?
    /// cpuset.cpus / cpuset.mems (`0-3,6`); nil = inherited.
    public var cpusetCPUs: String?
    public var cpusetMems: String?
    /// Memory plus swap in bytes, as the CRI sends it (v1 semantics); -1 = unlimited swap.
    public var memorySwapLimitBytes: Int64?
    /// hugetlb limits: page size as the kernel names it (`2MB`, `1GB`) → bytes.
    public var hugepageLimits: [String: UInt64] = [:]
    /// Raw cgroup v2 files (CRI `unified`), written last.
    public var unified: [String: String] = [:]

    public init(cpuLimitMillis: Int64? = nil, cpuRequestMillis: Int64? = nil, memoryLimitBytes: Int64? = nil,
                pidsLimit: Int64? = nil) {
        self.cpuLimitMillis = cpuLimitMillis
        self.cpuRequestMillis = cpuRequestMillis
        self.memoryLimitBytes = memoryLimitBytes
        self.pidsLimit = pidsLimit
    }

    /// What the pod cgroup carries: the sum of its containers' limits when every container has one
    /// (otherwise none), the sum of the CPU requests, and the pod's pid limit.
    public static func pod(containers: [CgroupResources], pidsLimit: Int64?) -> CgroupResources {
        func sumIfAll(_ values: [Int64?]) -> Int64? {
            guard !values.isEmpty, values.allSatisfy({ $0 != nil }) else { return nil }
            return saturatingSum(values.compactMap { $0 })
        }
        let requests = containers.compactMap(\.cpuRequestMillis)
        return CgroupResources(
            cpuLimitMillis: sumIfAll(containers.map(\.cpuLimitMillis)),
            cpuRequestMillis: requests.isEmpty ? nil : saturatingSum(requests),
            memoryLimitBytes: sumIfAll(containers.map(\.memoryLimitBytes)),
            pidsLimit: pidsLimit)
    }

    /// Adds `other` (a pod's overhead) to these resources: limits and requests summed where both
    /// have them, quota summed over a common period.
    public mutating func add(_ other: CgroupResources) {
        func sum(_ a: Int64?, _ b: Int64?) -> Int64? {
            guard let a else { return b }
            guard let b else { return a }
            return Self.saturatingSum([a, b])
        }
        cpuLimitMillis = cpuLimitMillis == nil ? nil : sum(cpuLimitMillis, other.cpuLimitMillis)
        cpuRequestMillis = sum(cpuRequestMillis, other.cpuRequestMillis)
        memoryLimitBytes = memoryLimitBytes == nil ? nil : sum(memoryLimitBytes, other.memoryLimitBytes)
        if let quota = cpuQuotaMicroseconds, quota > 0, let extra = other.cpuQuotaMicroseconds, extra > 0 {
            cpuQuotaMicroseconds = Self.saturatingSum([quota, extra])
        }
        if let shares = cpuShares, let extra = other.cpuShares { cpuShares = min(shares + extra, 262_144) }
    }

    /// Sum that stops at Int64.max instead of wrapping (absurd manifests must not turn a limit
    /// negative or trap).
    static func saturatingSum(_ values: [Int64]) -> Int64 {
        values.reduce(Int64(0)) { total, value in
            let (sum, overflow) = total.addingReportingOverflow(value)
            return overflow ? Int64.max : sum
        }
    }
}
