import Foundation
import Glibc
import PodshimSystem
import XCTest
@testable import PodshimCgroups

final class PodCgroupsTests: XCTestCase {
    private var fs: FakeCgroupFS!

    override func setUpWithError() throws {
        fs = try FakeCgroupFS()
    }

    override func tearDown() {
        fs?.remove()
        fs = nil
    }

    private let pod = "podshim/pod-p1"

    private let twoContainers: [(name: String, resources: CgroupResources)] = [
        ("a", CgroupResources(cpuLimitMillis: 250, cpuRequestMillis: 250, memoryLimitBytes: 52_428_800)),
        ("b", CgroupResources(cpuLimitMillis: 500, memoryLimitBytes: 104_857_600)),
    ]

    @discardableResult
    private func create(_ containers: [(name: String, resources: CgroupResources)], pids: Int64? = 20) throws(SystemError) -> PodCgroups {
        try PodCgroups.create(hierarchy: CgroupHierarchy.at(fs.root), root: fs.root, podID: "p1",
                              containers: containers, podPidsLimit: pids)
    }

    func testPathLayout() {
        XCTAssertEqual(PodCgroups.path(root: "/sys/fs/cgroup", podID: "x1"), "/sys/fs/cgroup/podshim/pod-x1")
        let cgroups = PodCgroups(pod: Cgroup(path: "/r/podshim/pod-x1"), controllers: [])
        XCTAssertEqual(cgroups.sandbox.path, "/r/podshim/pod-x1/pause")
        XCTAssertEqual(cgroups.container("web").path, "/r/podshim/pod-x1/container-web")
    }

    func testCreateWritesContainerAndPodLimits() throws {
        try fs.makePod("p1", containers: ["a", "b"])
        let cgroups = try create(twoContainers)

        XCTAssertEqual(cgroups.pod.path, fs.root + "/podshim/pod-p1")
        XCTAssertEqual(cgroups.controllers, ["cpu", "memory", "pids"])

        // container-a: 250m limit, 250m request (256 shares → weight 35), 50 MiB.
        XCTAssertEqual(fs.contents("\(pod)/container-a/cpu.max"), "25000 100000")
        XCTAssertEqual(fs.contents("\(pod)/container-a/cpu.weight"), "35")
        XCTAssertEqual(fs.contents("\(pod)/container-a/memory.max"), "52428800")
        XCTAssertEqual(fs.contents("\(pod)/container-a/memory.swap.max"), "0")
        XCTAssertEqual(fs.contents("\(pod)/container-a/memory.oom.group"), "1")
        XCTAssertEqual(fs.contents("\(pod)/container-a/pids.max"), "max")

        // container-b: no request → 2 shares → weight 1.
        XCTAssertEqual(fs.contents("\(pod)/container-b/cpu.max"), "50000 100000")
        XCTAssertEqual(fs.contents("\(pod)/container-b/cpu.weight"), "1")
        XCTAssertEqual(fs.contents("\(pod)/container-b/memory.max"), "104857600")
        XCTAssertEqual(fs.contents("\(pod)/container-b/memory.swap.max"), "0")
        XCTAssertEqual(fs.contents("\(pod)/container-b/memory.oom.group"), "1")
        XCTAssertEqual(fs.contents("\(pod)/container-b/pids.max"), "max")

        // The pod: sums of the limits, the sum of requests (250m → weight 35), the pod pid limit,
        // and no memory.oom.group write.
        XCTAssertEqual(fs.contents("\(pod)/cpu.max"), "75000 100000")
        XCTAssertEqual(fs.contents("\(pod)/cpu.weight"), "35")
        XCTAssertEqual(fs.contents("\(pod)/memory.max"), "157286400")
        XCTAssertEqual(fs.contents("\(pod)/memory.swap.max"), "0")
        XCTAssertEqual(fs.contents("\(pod)/memory.oom.group"), "")
        XCTAssertEqual(fs.contents("\(pod)/pids.max"), "20")

        // Nothing is written into the sandbox leaf, nor into podshim/ itself.
        for file in FakeCgroupFS.interfaceFiles {
            XCTAssertEqual(fs.contents("\(pod)/pause/\(file)"), "", "pause/\(file)")
        }
        for file in ["cpu.max", "cpu.weight", "memory.max", "memory.swap.max", "memory.oom.group", "pids.max"] {
            XCTAssertEqual(fs.contents("podshim/\(file)"), "", "podshim/\(file)")
        }
        // No process moved, nothing killed.
        XCTAssertEqual(fs.contents("\(pod)/container-a/cgroup.procs"), "")
        XCTAssertEqual(fs.contents("\(pod)/cgroup.kill"), "")
    }

    func testCreateEnablesControllersDownToThePod() throws {
        try fs.makePod("p1", containers: ["a", "b"])
        try create(twoContainers)
        // Each write truncates the fake file, so only the last "+controller" remains.
        let written = ["+cpu", "+memory", "+pids"]
        for dir in ["", "podshim/", "\(pod)/"] {
            let value = fs.contents(dir + "cgroup.subtree_control")
            XCTAssertTrue(value.map(written.contains) ?? false, "\(dir)cgroup.subtree_control = \(value ?? "nil")")
        }
        // Leaves get no controllers enabled (no internal processes).
        for leaf in ["pause", "container-a", "container-b"] {
            XCTAssertEqual(fs.contents("\(pod)/\(leaf)/cgroup.subtree_control"), "", leaf)
        }
    }

    func testCreateEnablesControllersInIntermediateRoot() throws {
        // root below the mount point: R/kubelet.slice/podshim/… — every ancestor delegates.
        try fs.makeCgroup("kubelet.slice")
        try fs.makeCgroup("kubelet.slice/podshim")
        try fs.makeCgroup("kubelet.slice/podshim/pod-p1")
        try fs.makeCgroup("kubelet.slice/podshim/pod-p1/pause")
        try fs.makeCgroup("kubelet.slice/podshim/pod-p1/container-a")
        _ = try PodCgroups.create(hierarchy: CgroupHierarchy.at(fs.root), root: fs.root + "/kubelet.slice",
                                  podID: "p1", containers: [twoContainers[0]], podPidsLimit: nil)
        for dir in ["", "kubelet.slice/", "kubelet.slice/podshim/", "kubelet.slice/podshim/pod-p1/"] {
            XCTAssertEqual(fs.contents(dir + "cgroup.subtree_control")?.hasPrefix("+"), true, dir)
        }
        XCTAssertEqual(fs.contents("kubelet.slice/podshim/pod-p1/container-a/cpu.max"), "25000 100000")
        XCTAssertEqual(fs.contents("kubelet.slice/podshim/pod-p1/pids.max"), "max")
    }

    func testRootControllersLimitWhatIsEnabled() throws {
        // A host whose root offers only cpu: only "+cpu" is written there.
        try fs.scratch.makeFile("cgroup.controllers", "cpu io")
        try fs.makePod("p1", containers: ["a"])
        try create([twoContainers[0]])
        XCTAssertEqual(fs.contents("cgroup.subtree_control"), "+cpu")
    }

    func testPodMemoryIsMaxWhenAContainerHasNoMemoryLimit() throws {
        try fs.makePod("p1", containers: ["a", "b"])
        try create([
            ("a", CgroupResources(cpuLimitMillis: 250, memoryLimitBytes: 52_428_800)),
            ("b", CgroupResources(cpuLimitMillis: 500)),
        ], pids: nil)
        XCTAssertEqual(fs.contents("\(pod)/memory.max"), "max")
        XCTAssertEqual(fs.contents("\(pod)/memory.swap.max"), "max")
        XCTAssertEqual(fs.contents("\(pod)/cpu.max"), "75000 100000")
        XCTAssertEqual(fs.contents("\(pod)/cpu.weight"), "1")
        XCTAssertEqual(fs.contents("\(pod)/pids.max"), "max")
        XCTAssertEqual(fs.contents("\(pod)/container-b/memory.max"), "max")
        XCTAssertEqual(fs.contents("\(pod)/container-b/memory.swap.max"), "max")
        XCTAssertEqual(fs.contents("\(pod)/container-b/memory.oom.group"), "1")
    }

    func testFilesOfControllersNotAvailableInTheLeafAreNotWritten() throws {
        try fs.makePod("p1", containers: ["a", "b"])
        try fs.makeCgroup("\(pod)/container-a", controllers: "cpu pids")
        try create(twoContainers)
        XCTAssertEqual(fs.contents("\(pod)/container-a/cpu.max"), "25000 100000")
        XCTAssertEqual(fs.contents("\(pod)/container-a/cpu.weight"), "35")
        XCTAssertEqual(fs.contents("\(pod)/container-a/pids.max"), "max")
        XCTAssertEqual(fs.contents("\(pod)/container-a/memory.max"), "")
        XCTAssertEqual(fs.contents("\(pod)/container-a/memory.swap.max"), "")
        XCTAssertEqual(fs.contents("\(pod)/container-a/memory.oom.group"), "")
        // The other leaf is unaffected.
        XCTAssertEqual(fs.contents("\(pod)/container-b/memory.max"), "104857600")
    }

    func testFileTheKernelLacksIsSkipped() throws {
        try fs.makePod("p1", containers: ["a", "b"])
        for dir in [pod, "\(pod)/container-a", "\(pod)/container-b"] {
            XCTAssertEqual(unlink(fs.root + "/" + dir + "/memory.swap.max"), 0)
        }
        XCTAssertNoThrow(try create(twoContainers))
        XCTAssertFalse(fs.exists("\(pod)/container-a/memory.swap.max"), "must not be created")
        XCTAssertFalse(fs.exists("\(pod)/memory.swap.max"), "must not be created")
        XCTAssertEqual(fs.contents("\(pod)/container-a/memory.max"), "52428800")
        XCTAssertEqual(fs.contents("\(pod)/container-a/memory.oom.group"), "1")
        XCTAssertEqual(fs.contents("\(pod)/memory.max"), "157286400")
    }

    func testCreateMakesMissingDirectories() throws {
        // Only the root exists: the directories are created; a plain directory has no interface
        // files, so nothing is written and nothing fails.
        let cgroups = try create(twoContainers)
        XCTAssertEqual(cgroups.controllers, [])
        for dir in ["podshim", pod, "\(pod)/pause", "\(pod)/container-a", "\(pod)/container-b"] {
            var info = stat()
            XCTAssertEqual(stat(fs.root + "/" + dir, &info), 0, dir)
            XCTAssertEqual(info.st_mode & S_IFMT, S_IFDIR, dir)
        }
        XCTAssertFalse(fs.exists("\(pod)/container-a/cpu.max"))
    }

    func testWriteFailureNamesFileAndPath() throws {
        try fs.makePod("p1", containers: ["a", "b"])
        let leaf = fs.root + "/" + pod + "/container-a"
        XCTAssertEqual(unlink(leaf + "/cpu.max"), 0)
        XCTAssertEqual(mkdir(leaf + "/cpu.max", 0o755), 0)
        do {
            try create(twoContainers)
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.description, "open cpu.max \(leaf): EISDIR")
            XCTAssertEqual(error, SystemError("open cpu.max", path: leaf, errno: .isDirectory))
        }
        // The pod's own files were written before the failing leaf.
        XCTAssertEqual(fs.contents("\(pod)/cpu.max"), "75000 100000")
    }

    func testRemoveDeletesEmptyTree() throws {
        // rmdir needs empty directories: a tree of directories only (a real cgroupfs allows rmdir
        // with interface files present).
        for dir in ["\(pod)/pause", "\(pod)/container-a", "\(pod)/container-b/nested"] {
            try fs.scratch.makeDirectory(dir)
        }
        let cgroups = PodCgroups(pod: Cgroup(path: fs.root + "/" + pod), controllers: [])
        XCTAssertNoThrow(try cgroups.remove())
        XCTAssertFalse(fs.exists(pod))
        XCTAssertTrue(fs.exists("podshim"))
        XCTAssertNoThrow(try cgroups.remove(), "missing is fine")
    }

    // MARK: ancestors

    private func ancestors(_ mountPoint: String, _ root: String) -> [String] {
        PodCgroups.ancestors(from: mountPoint, to: root).map(\.path)
    }

    func testAncestors() {
        XCTAssertEqual(ancestors("/sys/fs/cgroup", "/sys/fs/cgroup"), ["/sys/fs/cgroup"])
        XCTAssertEqual(ancestors("/sys/fs/cgroup", "/sys/fs/cgroup/a/b"),
                       ["/sys/fs/cgroup", "/sys/fs/cgroup/a", "/sys/fs/cgroup/a/b"])
        XCTAssertEqual(ancestors("/sys/fs/cgroup", "/sys/fs/cgroup/a"), ["/sys/fs/cgroup", "/sys/fs/cgroup/a"])
        XCTAssertEqual(ancestors("/x", "/tmp/fake"), ["/tmp/fake"])
        // A sibling sharing a name prefix is not below the mount point.
        XCTAssertEqual(ancestors("/sys/fs/cgroup", "/sys/fs/cgroupX/a"), ["/sys/fs/cgroupX/a"])
    }
}
