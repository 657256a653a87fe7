import Glibc
import PodshimSystem
import XCTest
@testable import PodshimCgroups

final class CgroupFilesTests: XCTestCase {
    // MARK: cpu.max

    func testCpuMaxQuotaIsMillicoresTimesPeriodOverThousand() {
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 250), "25000 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 100), "10000 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 500), "50000 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 1000), "100000 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 2000), "200000 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 1500), "150000 100000")
    }

    func testCpuMaxQuotaIsFlooredAtThousandMicroseconds() {
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 1), "1000 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 5), "1000 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 9), "1000 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 10), "1000 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 11), "1100 100000")
    }

    func testCpuMaxWithoutLimitIsMax() {
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: nil), "max 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 0), "max 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: -5), "max 100000")
    }

    func testCpuMaxHugeValuesDoNotTrapAndStayWithinTheKernelMaximum() {
        // The kernel refuses quotas above max_cfs_runtime (17592186044 µs) with EINVAL.
        // quota = millicores × 100 µs
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 175_921_860), "17592186000 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 175_921_861), "17592186044 100000")
        // Overflowing products clamp instead of trapping.
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: 92_233_720_368_548), "17592186044 100000")
        XCTAssertEqual(CgroupFiles.cpuMax(milliCPU: Int64.max), "17592186044 100000")
    }

    func testPeriodConstants() {
        XCTAssertEqual(CgroupFiles.cpuPeriodMicroseconds, 100_000)
        XCTAssertEqual(CgroupFiles.minimumQuotaMicroseconds, 1000)
    }

    // MARK: CPU shares

    func testCpuSharesFromRequest() {
        XCTAssertEqual(CgroupFiles.cpuShares(milliCPU: nil), 2)
        XCTAssertEqual(CgroupFiles.cpuShares(milliCPU: 0), 2)
        XCTAssertEqual(CgroupFiles.cpuShares(milliCPU: -1), 2)
        XCTAssertEqual(CgroupFiles.cpuShares(milliCPU: 1), 2)
        XCTAssertEqual(CgroupFiles.cpuShares(milliCPU: 2), 2)
        XCTAssertEqual(CgroupFiles.cpuShares(milliCPU: 3), 3)
        XCTAssertEqual(CgroupFiles.cpuShares(milliCPU: 100), 102)
        XCTAssertEqual(CgroupFiles.cpuShares(milliCPU: 250), 256)
        XCTAssertEqual(CgroupFiles.cpuShares(milliCPU: 500), 512)
        XCTAssertEqual(CgroupFiles.cpuShares(milliCPU: 1000), 1024)
        XCTAssertEqual(CgroupFiles.cpuShares(milliCPU: 2000), 2048)
    }

    /// A huge request must give the largest weight, not wrap around to the smallest.
    func testHugeCpuRequestGivesLargestWeight() {
        XCTAssertEqual(CgroupFiles.cpuWeight(shares: CgroupFiles.cpuShares(milliCPU: 1_000_000)), 10_000)
        let shares = CgroupFiles.cpuShares(milliCPU: Int64.max)
        XCTAssertGreaterThanOrEqual(shares, 262_144, "milliCPU × 1024 overflowed and wrapped")
        XCTAssertEqual(CgroupFiles.cpuWeight(shares: shares), 10_000)
        XCTAssertEqual(CgroupFiles.files(for: CgroupResources(cpuRequestMillis: Int64.max))[1].value, "10000")
    }

    // MARK: cpu.weight

    func testCpuWeightBounds() {
        XCTAssertEqual(CgroupFiles.cpuWeight(shares: 1), 1)
        XCTAssertEqual(CgroupFiles.cpuWeight(shares: 2), 1)
        XCTAssertEqual(CgroupFiles.cpuWeight(shares: 262_144), 10_000)
        XCTAssertEqual(CgroupFiles.cpuWeight(shares: 300_000), 10_000)
        XCTAssertEqual(CgroupFiles.cpuWeight(shares: UInt64.max), 10_000)
    }

    func testCpuWeightOf1024SharesIsExactly100() {
        // (l² + 125·l)/612 − 7/34 with l = 10 is exactly 2; rounding error must not make it 101.
        XCTAssertEqual(CgroupFiles.cpuWeight(shares: 1024), 100)
    }

    /// Expected values computed independently with Python:
    /// `l = math.log2(s); math.ceil(10 ** ((l*l + 125*l)/612 - 7/34))`.
    func testCpuWeightLogarithmicFormula() {
        let expected: [(UInt64, UInt64)] = [
            (3, 2), (102, 17), (256, 35), (512, 59), (1024, 100), (2048, 174),
            (10_240, 639), (102_400, 4429), (262_143, 10_000),
        ]
        for (shares, weight) in expected {
            XCTAssertEqual(CgroupFiles.cpuWeight(shares: shares), weight, "shares \(shares)")
        }
    }

    func testCpuWeightIsMonotonicAndInRange() {
        var previous: UInt64 = 0
        var shares: UInt64 = 2
        while shares <= 262_144 {
            let weight = CgroupFiles.cpuWeight(shares: shares)
            XCTAssertGreaterThanOrEqual(weight, previous, "shares \(shares)")
            XCTAssertTrue((1...10_000).contains(weight), "shares \(shares) → \(weight)")
            previous = weight
            shares += 97
        }
    }

    // MARK: files(for:)

    private func pairs(_ files: [(name: String, value: String)]) -> [String] {
        files.map { "\($0.name)=\($0.value)" }
    }

    func testFilesForLimitedContainer() {
        let resources = CgroupResources(cpuLimitMillis: 250, cpuRequestMillis: 100, memoryLimitBytes: 67_108_864)
        // request 100m → 102 shares → weight 17.
        XCTAssertEqual(pairs(CgroupFiles.files(for: resources)), [
            "cpu.max=25000 100000",
            "cpu.weight=17",
            "memory.max=67108864",
            "memory.swap.max=0",
            "memory.oom.group=1",
            "pids.max=max",
        ])
    }

    func testFilesWithoutLimits() {
        XCTAssertEqual(pairs(CgroupFiles.files(for: CgroupResources())), [
            "cpu.max=max 100000",
            "cpu.weight=1",
            "memory.max=max",
            "memory.swap.max=max",
            "memory.oom.group=1",
            "pids.max=max",
        ])
    }

    func testFilesWithoutOomGroupAndWithPidsLimit() {
        let resources = CgroupResources(cpuLimitMillis: 1000, cpuRequestMillis: 1000, memoryLimitBytes: 1, pidsLimit: 64)
        XCTAssertEqual(pairs(CgroupFiles.files(for: resources, oomGroup: false)), [
            "cpu.max=100000 100000",
            "cpu.weight=100",
            "memory.max=1",
            "memory.swap.max=0",
            "pids.max=64",
        ])
    }

    // MARK: CgroupResources.pod

    func testPodSumsLimitsWhenEveryContainerHasOne() {
        let pod = CgroupResources.pod(containers: [
            CgroupResources(cpuLimitMillis: 250, cpuRequestMillis: 100, memoryLimitBytes: 1000),
            CgroupResources(cpuLimitMillis: 500, cpuRequestMillis: 200, memoryLimitBytes: 2000, pidsLimit: 7),
        ], pidsLimit: 20)
        XCTAssertEqual(pod, CgroupResources(cpuLimitMillis: 750, cpuRequestMillis: 300, memoryLimitBytes: 3000, pidsLimit: 20))
    }

    func testPodHasNoLimitWhenOneContainerHasNone() {
        let pod = CgroupResources.pod(containers: [
            CgroupResources(cpuLimitMillis: 250, cpuRequestMillis: 100, memoryLimitBytes: 1000),
            CgroupResources(cpuLimitMillis: nil, memoryLimitBytes: 2000),
            CgroupResources(cpuLimitMillis: 100, cpuRequestMillis: 50, memoryLimitBytes: nil),
        ], pidsLimit: nil)
        XCTAssertEqual(pod, CgroupResources(cpuLimitMillis: nil, cpuRequestMillis: 150, memoryLimitBytes: nil, pidsLimit: nil))
    }

    func testPodWithoutRequestsHasNoRequest() {
        let pod = CgroupResources.pod(containers: [
            CgroupResources(cpuLimitMillis: 100), CgroupResources(cpuLimitMillis: 200),
        ], pidsLimit: 5)
        XCTAssertEqual(pod, CgroupResources(cpuLimitMillis: 300, cpuRequestMillis: nil, memoryLimitBytes: nil, pidsLimit: 5))
    }

    func testPodWithoutContainers() {
        XCTAssertEqual(CgroupResources.pod(containers: [], pidsLimit: 3), CgroupResources(pidsLimit: 3))
        XCTAssertEqual(CgroupResources.pod(containers: [], pidsLimit: nil), CgroupResources())
    }

    /// Summing huge limits must not wrap around to a negative limit (the pod would get
    /// `memory.max -9223372036854775808`); saturating or dropping the limit are both acceptable.
    func testPodLimitSumDoesNotWrapNegative() {
        let pod = CgroupResources.pod(containers: [
            CgroupResources(cpuLimitMillis: Int64.max, memoryLimitBytes: Int64.max),
            CgroupResources(cpuLimitMillis: 1, memoryLimitBytes: 1),
        ], pidsLimit: nil)
        XCTAssertGreaterThanOrEqual(pod.memoryLimitBytes ?? Int64.max, Int64.max, "memory limit sum wrapped")
        XCTAssertGreaterThanOrEqual(pod.cpuLimitMillis ?? Int64.max, Int64.max, "cpu limit sum wrapped")
    }
}

final class CRIResourceFilesTests: XCTestCase {
    private func file(_ name: String, _ resources: CgroupResources) -> String? {
        CgroupFiles.files(for: resources).first { $0.name == name }?.value
    }

    func testQuotaPeriodAndSharesAsSent() {
        var resources = CgroupResources(cpuLimitMillis: 500)
        resources.cpuPeriodMicroseconds = 50_000
        resources.cpuQuotaMicroseconds = 20_000
        resources.cpuShares = 1024
        XCTAssertEqual(file("cpu.max", resources), "20000 50000")
        XCTAssertEqual(file("cpu.weight", resources), "100")
        resources.cpuQuotaMicroseconds = -1
        XCTAssertEqual(file("cpu.max", resources), "max 50000")
        resources.cpuQuotaMicroseconds = nil
        XCTAssertEqual(file("cpu.max", resources), "50000 50000", "500m over a 50 ms period")
    }

    func testSwapIsMemoryPlusSwapMinusMemory() {
        var resources = CgroupResources(memoryLimitBytes: 100)
        XCTAssertEqual(file("memory.swap.max", resources), "0", "a limit and no swap said: no swap")
        resources.memorySwapLimitBytes = 300
        XCTAssertEqual(file("memory.swap.max", resources), "200")
        resources.memorySwapLimitBytes = -1
        XCTAssertEqual(file("memory.swap.max", resources), "max")
    }

    func testCpusetHugepagesAndUnifiedLast() {
        var resources = CgroupResources()
        resources.cpusetCPUs = "0-1"
        resources.cpusetMems = "0"
        resources.hugepageLimits = ["2MB": 0]
        resources.unified = ["memory.high": "1000000", "cpu.max": "5000 100000"]
        let files = CgroupFiles.files(for: resources)
        XCTAssertEqual(files.first?.name, "cpuset.cpus")
        XCTAssertEqual(file("hugetlb.2MB.max", resources), "0")
        XCTAssertEqual(files.suffix(2).map(\.name), ["cpu.max", "memory.high"], "unified is written last and wins")
        XCTAssertEqual(files.last { $0.name == "cpu.max" }?.value, "5000 100000")
    }

    func testKubeletParentPaths() {
        XCTAssertEqual(PodCgroups.parentPath("/kubepods/burstable/pod1234", systemd: false), "/kubepods/burstable/pod1234")
        XCTAssertNil(PodCgroups.parentPath("/kubepods/../etc", systemd: false))
        XCTAssertNil(PodCgroups.parentPath("kubepods.slice", systemd: false))
        XCTAssertEqual(PodCgroups.parentPath("kubepods-burstable-pod12_34.slice", systemd: true),
                       "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod12_34.slice")
        XCTAssertEqual(PodCgroups.parentPath("kubepods.slice", systemd: true), "/kubepods.slice")
        XCTAssertNil(PodCgroups.parentPath("/kubepods/pod1", systemd: true))
        XCTAssertEqual(PodCgroups.Naming.kubelet(sandboxID: "abc", systemd: false).sandbox, "abc")
    }
}

final class PodParentFilesTests: XCTestCase {
    func testOnlyWhatIsSetReachesAKubeletsPodCgroup() {
        var resources = CgroupResources(memoryLimitBytes: 1 << 30)
        resources.cpuQuotaMicroseconds = 150_000
        let names = CgroupFiles.filesOfSetValues(for: resources).map(\.name)
        XCTAssertEqual(names, ["cpu.max", "memory.max"], "pids.max, cpu.weight and swap stay as the kubelet wrote them")
        XCTAssertEqual(CgroupFiles.filesOfSetValues(for: CgroupResources()).map(\.name), [])
    }
}
