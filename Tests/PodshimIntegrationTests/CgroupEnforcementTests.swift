import Foundation
import Glibc
import PodshimCgroups
import XCTest

/// cgroup v2 limits hold on a real kernel. These need a full cgroup v2 hierarchy (cpu, memory and
/// pids controllers), which our hybrid development hosts lack: hack/test.sh runs them inside a VM
/// (hack/vm/run-in-vm.sh). Elsewhere they skip.
final class CgroupEnforcementTests: XCTestCase {
    var harness: PodshimHarness!
    var hierarchy: CgroupHierarchy!

    override func setUpWithError() throws {
        harness = try PodshimHarness.make()
        let detected = CgroupHierarchy.detect()
        guard let detected, detected.canEnforceLimits else {
            if ProcessInfo.processInfo.environment["PODSHIM_REQUIRE_CGROUP_V2"] == "1" {
                throw HarnessError("PODSHIM_REQUIRE_CGROUP_V2=1 but cgroup v2 here cannot enforce limits "
                    + "(\(detected.map { "\($0.mountPoint): \($0.controllers.sorted())" } ?? "not mounted"))")
            }
            throw XCTSkip("no cgroup v2 hierarchy with cpu, memory and pids controllers here "
                + "(\(detected?.mountPoint ?? "none")); run hack/vm/run-in-vm.sh to prove enforcement")
        }
        hierarchy = detected
    }
    override func tearDown() { harness?.tearDown() }

    private func podCgroup(_ uid: String) -> Cgroup { Cgroup(path: PodCgroups.path(root: hierarchy.mountPoint, podID: uid)) }

    func testMemoryLimitOOMKillsOnlyThatContainer() throws {
        let uid = "oom-" + UUID().uuidString.prefix(8).lowercased()
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: oom, uid: \(uid) }
            spec:
              restartPolicy: Never
              terminationGracePeriodSeconds: 2
              volumes: [{ name: shared, emptyDir: {} }]
              containers:
              - name: hog
                image: busybox
                command: [sh, -c, "touch /shared/hog-started; dd if=/dev/zero of=/dev/null bs=200M count=1; touch /shared/hog-survived"]
                resources: { limits: { memory: 50Mi } }
                volumeMounts: [{ name: shared, mountPath: /shared }]
              - name: steady
                image: busybox
                command: [sh, -c, "echo up; until [ -e /shared/stop ]; do sleep 0.1; done; echo still-alive"]
                volumeMounts: [{ name: shared, mountPath: /shared }]
            """)
        try harness.eventually(timeout: 60, "both containers to start") {
            run.lines(of: "steady") == ["up"] && harness.recordedPIDs(uid: uid).containers.count == 2
        }
        let hog = try XCTUnwrap(harness.recordedPIDs(uid: uid).containers["hog"])
        try harness.eventually(timeout: 120, "the hog to be killed") { !isRunning(hog) }
        let volume = harness.rootDir + "/pods/\(uid)/volumes/shared"
        _ = FileManager.default.createFile(atPath: volume + "/stop", contents: nil)
        XCTAssertEqual(try run.wait(timeout: 120), 1, run.stderr)
        XCTAssertTrue(run.stderr.contains("container hog: exit code 137 (OOMKilled, SIGKILL)"), run.stderr)
        XCTAssertTrue(run.stderr.contains("container steady: exit code 0 (Completed)"), run.stderr)
        XCTAssertEqual(run.lines(of: "steady"), ["up", "still-alive"])
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testCPULimitThrottlesABusyLoop() throws {
        // Usage and elapsed time are both measured inside the container, over 3 s of busy loop.
        let script = """
            usage() { grep '^usage_usec ' /sys/fs/cgroup/cpu.stat | cut -d' ' -f2; }
            u0=$(usage); t0=$(cut -d' ' -f1 /proc/uptime)
            timeout 3 sh -c 'while :; do :; done'
            t1=$(cut -d' ' -f1 /proc/uptime); u1=$(usage)
            echo "elapsed=$t0 $t1"
            echo "usage=$u0 $u1"
            grep '^nr_throttled ' /sys/fs/cgroup/cpu.stat | tr ' ' '='
            """
        let (status, run) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: cpu }
            spec:
              restartPolicy: Never
              containers:
              - { name: busy, image: busybox, command: [sh, -c, \(json(script))], resources: { limits: { cpu: 200m } } }
            """, timeout: 120)
        XCTAssertEqual(status, 0, run.stderr)
        let values = Dictionary(run.lines(of: "busy").compactMap { line -> (String, String)? in
            let parts = line.split(separator: "=", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), String(parts[1])) : nil
        }, uniquingKeysWith: { $1 })
        let times = try XCTUnwrap(values["elapsed"]).split(separator: " ").compactMap { Double($0) }
        let usages = try XCTUnwrap(values["usage"]).split(separator: " ").compactMap { Double($0) }
        XCTAssertEqual(usages.count, 2)
        let usage = usages[1] - usages[0]
        let throttled = try XCTUnwrap(values["nr_throttled"].flatMap { Int($0) })
        XCTAssertEqual(times.count, 2)
        let share = usage / 1e6 / (times[1] - times[0])
        print("cpu limit 200m: used \(share * 100)% of one CPU over \(times[1] - times[0]) s, nr_throttled \(throttled)")
        XCTAssertGreaterThanOrEqual(share, 0.15)
        XCTAssertLessThanOrEqual(share, 0.25)
        XCTAssertGreaterThan(throttled, 0)
    }

    func testPodPidsLimitStopsAForkBombAndThePodStillStops() throws {
        let uid = "pids-" + UUID().uuidString.prefix(8).lowercased()
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: forkbomb, uid: \(uid) }
            spec:
              restartPolicy: Never
              terminationGracePeriodSeconds: 1
              containers:
              - { name: bomb, image: busybox, command: [sh, -c, "echo start; b() { b | b & }; b; sleep 300"] }
            """, extraArguments: ["--pod-pids-limit", "20"])
        try harness.eventually(timeout: 60, "the bomb to start") { run.lines(of: "bomb").first == "start" }
        let pod = podCgroup(uid)
        // Before Linux 6.2-ish, pids.events counts a refused fork in the forking task's cgroup (the
        // leaf), later also in the cgroup whose limit was hit (the pod): look at both.
        func refusals() -> Int64 {
            [pod, pod.child("container-bomb")].reduce(0) { $0 + ($1.keyedValues("pids.events")["max"] ?? 0) }
        }
        try harness.eventually(timeout: 60, "forks to be refused") { refusals() > 0 }
        XCTAssertEqual(try pod.read("pids.max").trimmingCharacters(in: .whitespacesAndNewlines), "20")
        XCTAssertLessThanOrEqual(pod.number("pids.current") ?? 99, 20)
        run.send(SIGINT)
        XCTAssertEqual(try run.wait(timeout: 120), 1, run.stderr)
        XCTAssertFalse(pod.exists, "the pod cgroup must be gone")
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testWrittenFilesHaveTheExpectedContent() throws {
        let uid = "files-" + UUID().uuidString.prefix(8).lowercased()
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: files, uid: \(uid) }
            spec:
              restartPolicy: Never
              volumes: [{ name: sync, emptyDir: {} }]
              containers:
              - name: a
                image: busybox
                command: [sh, -c, "echo up; until [ -e /sync/go ]; do sleep 0.05; done"]
                resources: { limits: { cpu: 250m, memory: 64Mi }, requests: { cpu: 100m } }
                volumeMounts: [{ name: sync, mountPath: /sync }]
              - name: b
                image: busybox
                command: [sh, -c, "echo up; until [ -e /sync/go ]; do sleep 0.05; done"]
                resources: { limits: { cpu: "0.5" } }
                volumeMounts: [{ name: sync, mountPath: /sync }]
            """, extraArguments: ["--pod-pids-limit", "50"])
        try harness.eventually(timeout: 60, "containers to run") { run.lines(of: "a") == ["up"] && run.lines(of: "b") == ["up"] }
        let pod = podCgroup(uid)
        func file(_ cgroup: Cgroup, _ name: String) -> String {
            ((try? cgroup.read(name)) ?? "<missing>").trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let a = pod.child("container-a"), b = pod.child("container-b")
        XCTAssertEqual(file(a, "cpu.max"), "25000 100000")
        XCTAssertEqual(file(a, "cpu.weight"), "\(CgroupFiles.cpuWeight(shares: 102))") // 100m → 102 shares
        XCTAssertEqual(file(a, "memory.max"), "67108864")
        XCTAssertEqual(file(a, "memory.oom.group"), "1")
        if FileManager.default.fileExists(atPath: a.path + "/memory.swap.max") {
            XCTAssertEqual(file(a, "memory.swap.max"), "0")
        }
        XCTAssertEqual(file(b, "cpu.max"), "50000 100000")
        XCTAssertEqual(file(b, "cpu.weight"), "\(CgroupFiles.cpuWeight(shares: 512))") // request = limit 500m
        XCTAssertEqual(file(b, "memory.max"), "max")
        XCTAssertEqual(file(pod, "cpu.max"), "75000 100000")
        XCTAssertEqual(file(pod, "memory.max"), "max", "b has no memory limit, so the pod has none")
        XCTAssertEqual(file(pod, "pids.max"), "50")
        // cpu, memory and pids, and cpuset and hugetlb where the kernel has them (full cgroup v2).
        let available = Set(file(pod, "cgroup.controllers").split(separator: " ").map(String.init))
        XCTAssertEqual(Set(file(pod, "cgroup.subtree_control").split(separator: " ").map(String.init)),
                       Set(["cpu", "memory", "pids", "cpuset", "hugetlb"]).intersection(available).union(["cpu", "memory", "pids"]))
        _ = FileManager.default.createFile(atPath: harness.rootDir + "/pods/\(uid)/volumes/sync/go", contents: nil)
        XCTAssertEqual(try run.wait(timeout: 120), 0, run.stderr)
        XCTAssertEqual(harness.leftovers(), [])
    }
}
