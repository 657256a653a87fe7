import Foundation
import Glibc
import PodshimSystem
import XCTest
@testable import PodshimCgroups

final class CgroupHierarchyTests: XCTestCase {
    private let unified = """
        21 26 0:20 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
        22 26 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
        26 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro
        30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
        31 26 0:27 / /run rw,nosuid,nodev shared:5 - tmpfs tmpfs rw,size=400000k,mode=755

        """

    private let hybrid = """
        22 26 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
        25 22 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:3 - tmpfs tmpfs ro,mode=755
        26 25 0:23 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate
        27 25 0:24 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:5 - cgroup cgroup rw,xattr,name=systemd
        28 25 0:25 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:6 - cgroup cgroup rw,cpu,cpuacct
        29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:7 - cgroup cgroup rw,memory
        30 25 0:27 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup rw,pids
        """

    private let v1Only = """
        25 22 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:3 - tmpfs tmpfs ro,mode=755
        29 25 0:26 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:7 - cgroup cgroup rw,memory
        31 26 0:27 / /run/cgroup2 rw,nosuid,nodev shared:5 - tmpfs tmpfs rw
        """

    func testUnifiedHost() {
        XCTAssertEqual(CgroupHierarchy.detect(mountInfo: unified)?.mountPoint, "/sys/fs/cgroup")
    }

    func testHybridHostUsesTheUnifiedMount() {
        XCTAssertEqual(CgroupHierarchy.detect(mountInfo: hybrid)?.mountPoint, "/sys/fs/cgroup/unified")
    }

    func testNoCgroup2MountIsNil() {
        XCTAssertNil(CgroupHierarchy.detect(mountInfo: v1Only))
        XCTAssertNil(CgroupHierarchy.detect(mountInfo: ""))
        XCTAssertNil(CgroupHierarchy.detect(mountInfo: "garbage\nmore garbage - x\n"))
    }

    func testSysFsCgroupIsPreferredOverOtherCgroup2Mounts() {
        let text = """
            40 26 0:40 / /run/other rw,relatime - cgroup2 none rw
            30 22 0:26 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw
            """
        XCTAssertEqual(CgroupHierarchy.detect(mountInfo: text)?.mountPoint, "/sys/fs/cgroup")
        let other = "40 26 0:40 / /run/other rw,relatime - cgroup2 none rw\n"
        XCTAssertEqual(CgroupHierarchy.detect(mountInfo: other)?.mountPoint, "/run/other")
    }

    func testEscapedMountPathIsUnescapedAndItsControllersRead() throws {
        let scratch = try ScratchDirectory()
        defer { scratch.remove() }
        let dir = try scratch.makeDirectory("my cgroup\tfs")
        try scratch.makeFile("my cgroup\tfs/cgroup.controllers", "cpuset cpu io memory pids\n")
        let escaped = dir.replacingOccurrences(of: " ", with: "\\040").replacingOccurrences(of: "\t", with: "\\011")
        let text = "50 26 0:50 / \(escaped) rw,relatime shared:9 - cgroup2 cgroup2 rw\n"
        let hierarchy = CgroupHierarchy.detect(mountInfo: text)
        XCTAssertEqual(hierarchy, CgroupHierarchy(mountPoint: dir, controllers: ["cpuset", "cpu", "io", "memory", "pids"]))
        XCTAssertEqual(hierarchy?.canEnforceLimits, true)
    }

    func testAtReadsRootControllers() throws {
        let fs = try FakeCgroupFS(rootControllers: "cpu memory pids io")
        defer { fs.remove() }
        XCTAssertEqual(CgroupHierarchy.at(fs.root), CgroupHierarchy(mountPoint: fs.root, controllers: ["cpu", "memory", "pids", "io"]))
        XCTAssertEqual(CgroupHierarchy.at(fs.root + "/missing").controllers, [])
    }

    func testMissingControllers() {
        func hierarchy(_ controllers: Set<String>) -> CgroupHierarchy {
            CgroupHierarchy(mountPoint: "/sys/fs/cgroup", controllers: controllers)
        }
        XCTAssertEqual(CgroupHierarchy.limitControllers, ["cpu", "memory", "pids"])

        XCTAssertEqual(hierarchy(["cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"]).missingControllers, [])
        XCTAssertTrue(hierarchy(["cpu", "memory", "pids"]).canEnforceLimits)

        XCTAssertEqual(hierarchy(["cpu", "io"]).missingControllers, ["memory", "pids"])
        XCTAssertFalse(hierarchy(["cpu", "io"]).canEnforceLimits)

        XCTAssertEqual(hierarchy(["pids"]).missingControllers, ["cpu", "memory"])
        XCTAssertEqual(hierarchy([]).missingControllers, ["cpu", "memory", "pids"])
        XCTAssertFalse(hierarchy([]).canEnforceLimits)
    }
}
