import Foundation
import Glibc
import PodshimCgroups
import XCTest

/// cgroup behaviour that holds on every host with a cgroup v2 mount — also a hybrid one like our
/// development machines, where v2 groups processes but cannot limit them.
final class CgroupGroupingTests: XCTestCase {
    var harness: PodshimHarness!
    var hierarchy: CgroupHierarchy!

    override func setUpWithError() throws {
        harness = try PodshimHarness.make()
        hierarchy = try XCTUnwrap(CgroupHierarchy.detect(), "no cgroup2 mount on this host")
    }
    override func tearDown() { harness?.tearDown() }

    func testContainersLiveInTheirLeafCgroupsWhichAreRemovedWithThePod() throws {
        let uid = "cg-" + UUID().uuidString.prefix(8).lowercased()
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: grouped, uid: \(uid) }
            spec:
              restartPolicy: Never
              volumes: [{ name: sync, emptyDir: {} }]
              containers:
              - { name: a, image: busybox, command: [sh, -c, "echo up; cat /proc/self/cgroup; until [ -e /sync/go ]; do sleep 0.05; done"], volumeMounts: [{ name: sync, mountPath: /sync }] }
            """)
        try harness.eventually("the container to run") { run.lines(of: "a").first == "up" }
        let pod = PodCgroups.path(root: hierarchy.mountPoint, podID: uid)
        let pids = try harness.recordedPIDs(uid: uid, waitingFor: 1)
        // The shell's short-lived children (cat, sleep) share the leaf, and cgroup.procs has no
        // order: under load a child can be listed first. The container's init must be among them.
        let procs = try String(contentsOfFile: pod + "/container-a/cgroup.procs", encoding: .utf8)
        let containerPID = try XCTUnwrap(pids.containers["a"], "the container's pid is recorded")
        XCTAssertTrue(procs.split(separator: "\n").compactMap { Int32($0) }.contains(containerPID), procs)
        let pause = try String(contentsOfFile: pod + "/pause/cgroup.procs", encoding: .utf8)
        XCTAssertEqual(pause.split(separator: "\n").compactMap { Int32($0) }, [pids.sandbox].compactMap { $0 })
        _ = FileManager.default.createFile(atPath: harness.rootDir + "/pods/\(uid)/volumes/sync/go", contents: nil)
        XCTAssertEqual(try run.wait(), 0, run.stderr)
        // In its own cgroup namespace the container sees its leaf as the root.
        XCTAssertEqual(run.lines(of: "a").last, "0::/")
        XCTAssertFalse(FileManager.default.fileExists(atPath: pod), "the pod cgroup must be removed")
        if !hierarchy.canEnforceLimits {
            XCTAssertTrue(run.stderr.contains("limits are not enforced"), run.stderr)
        }
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testProcessesThatEscapedTheContainerInitAreKilledWithTheContainer() throws {
        // In a shared PID namespace an orphan is adopted by the pause process and would outlive its
        // container; cgroup.kill on the container's cgroup takes it down.
        let (status, run) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: escape }
            spec:
              restartPolicy: Never
              shareProcessNamespace: true
              volumes: [{ name: sync, emptyDir: {} }]
              containers:
              - { name: a, image: busybox, command: [sh, -c, "sleep 300 & echo $! > /sync/pid"], volumeMounts: [{ name: sync, mountPath: /sync }] }
              - name: b
                image: busybox
                command: [sh, -c, "until [ -s /sync/pid ]; do sleep 0.05; done; sleep 1; if kill -0 $(cat /sync/pid) 2>/dev/null; then echo escaped-alive; else echo escaped-gone; fi"]
                volumeMounts: [{ name: sync, mountPath: /sync }]
            """)
        XCTAssertEqual(status, 0, run.stderr)
        XCTAssertEqual(run.lines(of: "b"), ["escaped-gone"])
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testRequireCgroupsRefusesAHostThatCannotEnforce() throws {
        try XCTSkipIf(hierarchy.canEnforceLimits, "this host enforces limits; the refusal is for hybrid/v1 hosts")
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: strict }
            spec:
              containers: [{ name: a, image: busybox, command: ["true"] }]
            """, extraArguments: ["--require-cgroups"])
        XCTAssertEqual(try run.wait(), 2)
        XCTAssertTrue(run.stderr.contains("--require-cgroups: cgroup v2 at \(hierarchy.mountPoint) has no"), run.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.stateDir))
    }

    func testCrashedPodCgroupIsRemovedOnTheNextStart() throws {
        let uid = "cgcrash-" + UUID().uuidString.prefix(8).lowercased()
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: crash, uid: \(uid) }
            spec:
              shareProcessNamespace: true
              containers: [{ name: a, image: busybox, command: [sh, -c, "sleep 300 & echo ready; exec sleep 300"] }]
            """)
        try harness.eventually("the container to run") { run.lines(of: "a") == ["ready"] }
        run.send(SIGKILL)
        _ = try run.wait()
        let pod = PodCgroups.path(root: hierarchy.mountPoint, podID: uid)
        XCTAssertTrue(Cgroup(path: pod).isPopulated, "the crash leaves processes in the pod cgroup")
        let (status, next) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: next }
            spec:
              restartPolicy: Never
              containers: [{ name: a, image: busybox, command: ["true"] }]
            """)
        XCTAssertEqual(status, 0, next.stderr)
        XCTAssertTrue(next.stderr.contains("cleaned up pod crash (\(uid))"), next.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pod))
        XCTAssertEqual(harness.leftovers(), [])
    }
}
