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

    /// Sum that stops at Int64.max instead of wrapping (absurd manifests must not turn a limit
    /// negative or trap).
    static func saturatingSum(_ values: [Int64]) -> Int64 {
        values.reduce(Int64(0)) { total, value in
            let (sum, overflow) = total.addingReportingOverflow(value)
            return overflow ? Int64.max : sum
        }
    }
}
