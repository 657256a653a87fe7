import Testing
#if canImport(Glibc)
import Glibc
#endif
@testable import podshim_bench

@Test func statsInMicroseconds() {
    var book = LatencyBook()
    for ns in [100_000, 200_000, 300_000, 400_000] as [UInt64] { book.record("Version", nanoseconds: ns) }
    book.markUnimplemented("ListPodSandboxStats")
    let json = Report.stats(book).rendered()
    #expect(json.contains("\"Version\": {\"count\": 4, \"min_us\": 100, \"p50_us\": 200"))
    #expect(json.contains("\"max_us\": 400"))
    #expect(json.contains("\"mean_us\": 250"))
    #expect(json.contains("\"ListPodSandboxStats\": {\"unimplemented\": true}"))
    #expect(book.total == 1_000_000)
}

@Test func stagesKeepFirstSeenOrder() throws {
    var book = LatencyBook()
    book.record(try StartProfile.parse(#"{"stages":[{"stage":"plan","ns":1000},{"stage":"clone","ns":50000}]}"#))
    book.record(try StartProfile.parse(#"{"stages":[{"stage":"exec","ns":7000},{"stage":"plan","ns":3000}]}"#))
    #expect(book.entries.map(\.name) == ["plan", "clone", "exec"])
    #expect(book.histogram("plan")?.totalCount == 2)
    let json = Report.profile(book).rendered()
    #expect(json.hasPrefix("[\n  {\"stage\": \"plan\", \"count\": 2,"))
    #expect(throws: (any Error).self) { try StartProfile.parse(#"{"stages":[{"name":"x"}]}"#) }
}

@Test func mergeAddsCounts() {
    var a = LatencyBook(), b = LatencyBook()
    a.record("RunPodSandbox", nanoseconds: 5_000_000)
    b.record("StartContainer", nanoseconds: 1_000_000)
    b.record("RunPodSandbox", nanoseconds: 7_000_000)
    a.merge(b)
    #expect(a.entries.map(\.name) == ["RunPodSandbox", "StartContainer"])
    #expect(a.histogram("RunPodSandbox")?.totalCount == 2)
}

@Test func jsonEscapesAndOrders() {
    let json = BenchJSON.object([
        ("label", .string("a\"b\n")), ("start_s", .seconds(1_234_567_890)), ("none", .null),
        ("rpcs", .object([("x", .object([("count", .int(1))]))])),
    ]).rendered()
    #expect(json == """
        {
          "label": "a\\"b\\n",
          "start_s": 1.235,
          "none": null,
          "rpcs": {
            "x": {"count": 1}
          }
        }
        """)
}

@Test func procStatus() {
    let text = "Name:\tpodshim\nState:\tS (sleeping)\nVmRSS:\t   51234 kB\nThreads:\t17\n"
    #expect(ProcSnapshot.parse(status: text) == ProcSnapshot(threads: 17, rssKB: 51234))
    #expect(ProcSnapshot.parse(status: "Name:\tx\n") == nil)
}

@Test func failedAndServerCPUEntries() {
    var book = LatencyBook()
    book.record("Version", nanoseconds: 100_000)
    book.setServerCPU("Version", microseconds: 42.5)
    book.markFailed("ListPodSandboxStats", error: "unknown: cgroupPath is empty")
    let json = Report.stats(book).rendered()
    #expect(json.contains("\"mean_us\": 100, \"server_cpu_us\": 42.5}"))
    #expect(json.contains("\"ListPodSandboxStats\": {\"error\": \"unknown: cgroupPath is empty\"}"))
    let table = Report.table(book, title: "rpc")
    #expect(table.contains("server CPU µs (mean)"))
    #expect(table.contains("error  unknown: cgroupPath is empty"))
}

@Test func callBudgetRenewsBeforeARegion() {
    var budget = CallBudget(limit: 100)
    #expect(!budget.exhausted(by: 1))  // nothing spent: a first connection, not a renewal
    for _ in 0..<97 { budget.spend() }
    #expect(!budget.exhausted(by: 3))
    #expect(budget.exhausted(by: 4))
    for _ in 0..<3 { budget.spend() }
    #expect(budget.exhausted(by: 1))
    budget.renew()
    #expect(budget.used == 0 && !budget.exhausted(by: 500))
    budget.spend()
    #expect(budget.exhausted(by: 500))  // longer than a connection: renewed once, before it
}

@Test func procStatCPU() {
    // comm with a space and a parenthesis; utime 1234, stime 56 (fields 14, 15).
    let text = "4242 (containerd (x)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 12 0 100 0 0\n"
    #expect(ProcCPU.parse(stat: text) == 1290)
    #expect(ProcCPU.parse(stat: "4242 (x) S 1") == nil)
    #expect(ProcCPU.microseconds(ticks: ProcCPU.ticksPerSecond) == 1_000_000)
}

@Test func cgroupMountsAndRunTops() throws {
    let mountinfo = """
        25 1 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
        26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid shared:4 - cgroup2 cgroup2 rw
        30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct
        31 25 0:29 / /sys/fs/cgroup/odd\\040name rw shared:10 - cgroup cgroup rw,pids
        40 1 8:1 / / rw,relatime - ext4 /dev/sda1 rw
        """
    #expect(CgroupTops.mounts(mountinfo: mountinfo) == ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/odd name"])
    #expect(CgroupTops.isRunTop("/podshim-bench-1a2b3c4d"))
    #expect(!CgroupTops.isRunTop("/podshim-bench-"))
    #expect(!CgroupTops.isRunTop("/podshim-bench-x/../.."))
    #expect(!CgroupTops.isRunTop("/kubepods"))
    #expect(BenchSpec(namespace: "n", image: "i", hostNetwork: true, runID: "r1").pod("x").linux.cgroupParent.hasPrefix("/podshim-bench-r1/pod"))
}

@Test func directoriesDeepestFirst() throws {
    let root = "/tmp/podshim-bench-test-\(getpid())"
    for dir in [root, root + "/a", root + "/a/b", root + "/c"] { #expect(mkdir(dir, 0o755) == 0) }
    defer { for dir in [root + "/a/b", root + "/a", root + "/c", root] { rmdir(dir) } }
    let dirs = CgroupTops.directories(under: root)
    #expect(Set(dirs) == [root, root + "/a", root + "/a/b", root + "/c"])
    #expect(dirs.last == root)
    #expect(dirs.firstIndex(of: root + "/a/b")! < dirs.firstIndex(of: root + "/a")!)
}
