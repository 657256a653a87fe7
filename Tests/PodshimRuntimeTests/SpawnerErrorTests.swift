import XCTest
@testable import PodshimRuntime
@testable import PodshimProcess
@testable import PodshimSystem
import PodshimSpec
import CShims
import Glibc

/// Spawner's pure parts: the child's `{stage, errno, index}` report → SpawnError, and flag mapping.
final class SpawnerErrorTests: XCTestCase {
    private func report(_ stage: psh_stage, _ error: Int32, index: Int32 = -1) -> psh_spawn_report {
        psh_spawn_report(stage: Int32(stage.rawValue), error: error, index: index)
    }

    private let plan = ProcessPlan(
        newNamespaces: [.mount, .pid], joinedNamespaces: .pod, hostname: "box",
        rootfs: "/var/lib/x/pods/u/containers/app/rootfs",
        rootfsMount: MountPlan(source: "overlay", target: "/var/lib/x/pods/u/containers/app/rootfs",
                               fileSystemType: "overlay", data: "lowerdir=/l,upperdir=/u,workdir=/w"),
        mounts: [
            MountPlan(source: "proc", target: "/proc", fileSystemType: "proc"),
            .bind("/var/lib/x/pods/u/volumes/data", to: "/data"),
            MountPlan(source: nil, target: "/dev/mqueue", fileSystemType: "mqueue"),
            MountPlan(source: nil, target: "/weird", fileSystemType: nil),
        ],
        devices: [DevicePlan(path: "/dev/null", major: 1, minor: 3), DevicePlan(path: "/dev/zero", major: 1, minor: 5)],
        symlinks: [SymlinkPlan(target: "/proc/self/fd", path: "/dev/fd")],
        uid: 1000, gid: 2000,
        argv: ["nope", "--flag"], workingDirectory: "/work")

    private func describe(_ report: psh_spawn_report, plan: ProcessPlan? = nil, sandbox: ProcessHandle? = nil)
        -> SpawnError
    {
        Spawner.describe(report, plan: plan ?? self.plan, sandbox: sandbox)
    }

    func testExecve() {
        let error = describe(report(PSH_STAGE_EXECVE, ENOENT))
        XCTAssertEqual(error, SpawnError(stage: "execve", detail: "nope", errno: Errno(rawValue: ENOENT)))
        XCTAssertEqual(error.description, "execve nope: ENOENT")
    }

    func testMountNamesSourceAndTargetOfTheIndexedMount() {
        XCTAssertEqual(describe(report(PSH_STAGE_MOUNT, EPERM, index: 1)).description,
                       "mount /var/lib/x/pods/u/volumes/data on /data: EPERM")
        XCTAssertEqual(describe(report(PSH_STAGE_MOUNT, EPERM, index: 0)).description, "mount proc on /proc: EPERM")
    }

    func testMountWithoutSourceUsesFileSystemTypeThenNone() {
        XCTAssertEqual(describe(report(PSH_STAGE_MOUNT, EINVAL, index: 2)).description,
                       "mount mqueue on /dev/mqueue: EINVAL")
        XCTAssertEqual(describe(report(PSH_STAGE_MOUNT, EINVAL, index: 3)).description, "mount none on /weird: EINVAL")
    }

    func testMountTargetAndRemountStages() {
        XCTAssertEqual(describe(report(PSH_STAGE_MOUNT_TARGET, ENOTDIR, index: 1)).description,
                       "create mount target /var/lib/x/pods/u/volumes/data on /data: ENOTDIR")
        XCTAssertEqual(describe(report(PSH_STAGE_REMOUNT, EPERM, index: 1)).description,
                       "remount /var/lib/x/pods/u/volumes/data on /data: EPERM")
    }

    func testMountIndexOutOfRangeHasNoDetail() {
        let error = describe(report(PSH_STAGE_MOUNT, EPERM, index: 9))
        XCTAssertNil(error.detail)
        XCTAssertEqual(error.description, "mount: EPERM")
        XCTAssertEqual(describe(report(PSH_STAGE_MOUNT, EPERM, index: -1)).description, "mount: EPERM")
    }

    func testChdir() {
        XCTAssertEqual(describe(report(PSH_STAGE_CHDIR, ENOENT)).description, "chdir /work: ENOENT")
        var noCwd = plan
        noCwd.workingDirectory = nil
        XCTAssertEqual(describe(report(PSH_STAGE_CHDIR, ENOENT), plan: noCwd).description, "chdir /: ENOENT")
    }

    func testRootfsStages() {
        XCTAssertEqual(describe(report(PSH_STAGE_ROOTFS_MOUNT, EINVAL)).description,
                       "mount rootfs overlay on /var/lib/x/pods/u/containers/app/rootfs: EINVAL")
        var plain = plan
        plain.rootfsMount = nil
        XCTAssertEqual(describe(report(PSH_STAGE_ROOTFS_MOUNT, EINVAL), plan: plain).description,
                       "mount rootfs /var/lib/x/pods/u/containers/app/rootfs: EINVAL")
        XCTAssertEqual(describe(report(PSH_STAGE_OPEN_ROOTFS, ENOENT)).description,
                       "open rootfs /var/lib/x/pods/u/containers/app/rootfs: ENOENT")
        XCTAssertEqual(describe(report(PSH_STAGE_PIVOT_ROOT, EBUSY)).description,
                       "pivot_root /var/lib/x/pods/u/containers/app/rootfs: EBUSY")
    }

    func testDevicesSymlinksAndIDs() {
        XCTAssertEqual(describe(report(PSH_STAGE_MKNOD, EPERM, index: 1)).description, "mknod /dev/zero: EPERM")
        XCTAssertEqual(describe(report(PSH_STAGE_MKNOD, EPERM, index: 2)).description, "mknod: EPERM")
        XCTAssertEqual(describe(report(PSH_STAGE_SYMLINK, EEXIST, index: 0)).description, "symlink /dev/fd: EEXIST")
        XCTAssertEqual(describe(report(PSH_STAGE_SETUID, EPERM)).description, "setuid 1000: EPERM")
        XCTAssertEqual(describe(report(PSH_STAGE_SETGID, EPERM)).description, "setgid 2000: EPERM")
        XCTAssertEqual(describe(report(PSH_STAGE_SETGROUPS, EPERM)).description, "setgroups: EPERM")
    }

    func testSetnsNamesNamespacesAndSandboxPID() {
        let sandbox = ProcessHandle(pid: 4321, pidfd: -1)
        XCTAssertEqual(describe(report(PSH_STAGE_SETNS, EPERM), sandbox: sandbox).description,
                       "setns (net,ipc,uts) of pid 4321: EPERM")
        XCTAssertEqual(describe(report(PSH_STAGE_SETNS, EPERM)).description, "setns (net,ipc,uts) of pid 0: EPERM")
    }

    func testHostnameAndStagesWithoutDetail() {
        XCTAssertEqual(describe(report(PSH_STAGE_HOSTNAME, EPERM)).description, "sethostname box: EPERM")
        XCTAssertEqual(describe(report(PSH_STAGE_LOOPBACK, EPERM)).description, "loopback up: EPERM")
        XCTAssertEqual(describe(report(PSH_STAGE_MOUNT_PRIVATE, EINVAL)).description, "make / private: EINVAL")
        XCTAssertEqual(describe(report(PSH_STAGE_STDIO, EBADF)).description, "stdio: EBADF")
        XCTAssertEqual(describe(report(PSH_STAGE_SETSID, EPERM)).description, "setsid: EPERM")
        XCTAssertEqual(describe(report(PSH_STAGE_SIGNALS, EINVAL)).description, "reset signals: EINVAL")
        // What psh_spawn_finish reports for a short read of the report.
        XCTAssertEqual(describe(report(PSH_STAGE_NONE, EPIPE)).description, "none: EPIPE")
    }

    func testUnknownStage() {
        let error = describe(psh_spawn_report(stage: 999, error: EIO, index: -1))
        XCTAssertEqual(error, SpawnError(stage: "unknown", detail: nil, errno: Errno(rawValue: EIO)))
        XCTAssertEqual(error.description, "unknown: EIO")
    }

    func testUnknownErrnoIsNumbered() {
        XCTAssertEqual(describe(report(PSH_STAGE_EXECVE, 4242)).description, "execve nope: errno 4242")
    }

    func testStageNames() {
        XCTAssertEqual(String(cString: psh_stage_name(Int32(PSH_STAGE_EXECVE.rawValue))), "execve")
        XCTAssertEqual(String(cString: psh_stage_name(Int32(PSH_STAGE_CHDIR.rawValue))), "chdir")
        XCTAssertEqual(String(cString: psh_stage_name(-1)), "unknown")
    }

    func testSpawnWithoutSandboxFailsBeforeCloning() {
        // Rejected before any clone: joining namespaces needs the sandbox process.
        let error = assertThrows(SpawnError.self) {
            _ = try Spawner.spawn(self.plan, sandbox: nil, stdio: .init(), onExit: { _ in })
        }
        XCTAssertEqual(error, SpawnError(stage: "setns", detail: "(no sandbox process)",
                                         errno: Errno(rawValue: EINVAL)))
        XCTAssertEqual(error?.description, "setns (no sandbox process): EINVAL")
    }

    // MARK: flags

    func testCShimConstantsAreTheKernelValues() {
        XCTAssertEqual(psh_clone_newns, 0x0002_0000)
        XCTAssertEqual(psh_clone_newpid, 0x2000_0000)
        XCTAssertEqual(psh_clone_newnet, 0x4000_0000)
        XCTAssertEqual(psh_clone_newipc, 0x0800_0000)
        XCTAssertEqual(psh_clone_newuts, 0x0400_0000)
        XCTAssertEqual(psh_clone_newcgroup, 0x0200_0000)
        XCTAssertEqual(psh_ms_rdonly, 1)
        XCTAssertEqual(psh_ms_nosuid, 2)
        XCTAssertEqual(psh_ms_nodev, 4)
        XCTAssertEqual(psh_ms_noexec, 8)
        XCTAssertEqual(psh_ms_bind, 4096)
        XCTAssertEqual(psh_ms_rec, 16384)
        XCTAssertEqual(psh_ms_relatime, 1 << 21)
        XCTAssertEqual(psh_ms_strictatime, 1 << 24)
    }

    func testCloneFlags() {
        XCTAssertEqual(Spawner.cloneFlags([]), 0)
        XCTAssertEqual(Spawner.cloneFlags(.mount), psh_clone_newns)
        XCTAssertEqual(Spawner.cloneFlags(.pid), psh_clone_newpid)
        XCTAssertEqual(Spawner.cloneFlags(.network), psh_clone_newnet)
        XCTAssertEqual(Spawner.cloneFlags(.ipc), psh_clone_newipc)
        XCTAssertEqual(Spawner.cloneFlags(.uts), psh_clone_newuts)
        XCTAssertEqual(Spawner.cloneFlags(.cgroup), psh_clone_newcgroup)
        XCTAssertEqual(Spawner.cloneFlags([.mount, .pid]), psh_clone_newns | psh_clone_newpid)
        XCTAssertEqual(Spawner.cloneFlags(.pod), psh_clone_newnet | psh_clone_newipc | psh_clone_newuts)
        XCTAssertEqual(Spawner.cloneFlags([.network, .ipc, .uts, .pid]), 0x6C00_0000)
        XCTAssertEqual(Spawner.cloneFlags([.mount, .pid, .network, .ipc, .uts, .cgroup]),
                       psh_clone_newns | psh_clone_newpid | psh_clone_newnet | psh_clone_newipc
                           | psh_clone_newuts | psh_clone_newcgroup)
        XCTAssertEqual(Spawner.cloneFlags([.mount, .pid]) & psh_clone_newuser, 0, "never a user namespace")
    }

    func testMountFlags() {
        XCTAssertEqual(Spawner.mountFlags([]), 0)
        XCTAssertEqual(Spawner.mountFlags(.readOnly), psh_ms_rdonly)
        XCTAssertEqual(Spawner.mountFlags(.noSuid), psh_ms_nosuid)
        XCTAssertEqual(Spawner.mountFlags(.noDev), psh_ms_nodev)
        XCTAssertEqual(Spawner.mountFlags(.noExec), psh_ms_noexec)
        XCTAssertEqual(Spawner.mountFlags(.bind), psh_ms_bind)
        XCTAssertEqual(Spawner.mountFlags(.recursive), psh_ms_rec)
        XCTAssertEqual(Spawner.mountFlags(.strictAtime), psh_ms_strictatime)
        XCTAssertEqual(Spawner.mountFlags(.relatime), psh_ms_relatime)
        XCTAssertEqual(Spawner.mountFlags([.bind, .recursive, .readOnly]), psh_ms_bind | psh_ms_rec | psh_ms_rdonly)
        XCTAssertEqual(Spawner.mountFlags([.noSuid, .noExec, .noDev, .readOnly]), 15)
    }

    func testMountFlagsOfPlannedSystemMounts() {
        let mounts = ContainerPlanner.systemMounts(shmDirectory: "/shm")
        XCTAssertEqual(mounts.map { Spawner.mountFlags($0.flags) }, [
            psh_ms_nosuid | psh_ms_noexec | psh_ms_nodev,
            psh_ms_nosuid | psh_ms_strictatime,
            psh_ms_nosuid | psh_ms_noexec,
            psh_ms_bind | psh_ms_rec | psh_ms_nosuid | psh_ms_nodev | psh_ms_noexec,
            psh_ms_nosuid | psh_ms_noexec | psh_ms_nodev,
            psh_ms_nosuid | psh_ms_noexec | psh_ms_nodev | psh_ms_rdonly,
            psh_ms_nosuid | psh_ms_noexec | psh_ms_nodev | psh_ms_rdonly,
        ])
    }
}
