import XCTest
@testable import PodshimRuntime
@testable import PodshimProcess
@testable import PodshimSystem
import PodshimSecurity
import PodshimSpec
import Glibc

/// ContainerPlanner and SandboxPlanner: manifest + layout → ProcessPlan, without touching a file.
final class ContainerPlannerTests: XCTestCase {
    private let imageRootfs = "/images/busybox/rootfs"

    private func pod(
        containers: [ContainerSpec], volumes: [Volume] = [], shareProcessNamespace: Bool = false,
        hostname: String? = nil
    ) -> PodSpec {
        PodSpec(name: "web", hostname: hostname, shareProcessNamespace: shareProcessNamespace,
                volumes: volumes, containers: containers)
    }

    private func plan(_ pod: PodSpec, index: Int = 0) throws -> ProcessPlan {
        try ContainerPlanner(pod: pod, layout: Fixture.layout(pod)).plan(containerAt: index, imageRootfs: imageRootfs)
    }

    private func planError(_ pod: PodSpec, index: Int = 0, file: StaticString = #filePath, line: UInt = #line)
        -> ManifestError?
    {
        assertThrows(ManifestError.self, file: file, line: line) { _ = try self.plan(pod, index: index) }
    }

    // MARK: argv, namespaces, rootfs

    func testArgvIsCommandFollowedByArgs() throws {
        let spec = pod(containers: [
            ContainerSpec(name: "app", image: "busybox", command: ["/bin/sh", "-c"], args: ["echo hi", "x"]),
        ])
        XCTAssertEqual(try plan(spec).argv, ["/bin/sh", "-c", "echo hi", "x"])
    }

    func testArgsAloneBecomeArgv() throws {
        let spec = pod(containers: [ContainerSpec(name: "app", image: "busybox", args: ["sleep", "5"])])
        XCTAssertEqual(try plan(spec).argv, ["sleep", "5"])
    }

    func testNamespacesWithoutSharedProcessNamespace() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])]))
        XCTAssertEqual(result.newNamespaces, [.mount, .pid, .cgroup])
        XCTAssertEqual(result.joinedNamespaces, .pod)
        XCTAssertEqual(result.joinedNamespaces, [.network, .ipc, .uts])
        XCTAssertFalse(result.joinsSandboxPIDNamespace)
        XCTAssertNil(result.hostname)
        XCTAssertFalse(result.loopbackUp)
    }

    func testHostNamespacesAreNeitherNewNorJoined() throws {
        var spec = pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])])
        spec.hostNetwork = true
        spec.hostIPC = true
        spec.hostPID = true
        let result = try plan(spec)
        XCTAssertEqual(result.newNamespaces, [.mount, .cgroup])
        XCTAssertEqual(result.joinedNamespaces, [])
        XCTAssertEqual(result.inheritedNamespaces, [.network, .ipc, .uts, .pid])
        XCTAssertEqual(result.mounts.first { $0.target == "/dev/shm" }?.source, "/dev/shm", "host IPC: the host's /dev/shm")
        let sandbox = SandboxPlanner.plan(pod: spec, pauseBinary: "/pause")
        XCTAssertEqual(sandbox.newNamespaces, [])
        XCTAssertNil(sandbox.hostname, "a host-network pod keeps the host's name")
        XCTAssertFalse(sandbox.loopbackUp)

        spec.hostPID = false
        spec.hostIPC = false
        XCTAssertEqual(try plan(spec).joinedNamespaces, [.ipc])
        XCTAssertEqual(SandboxPlanner.plan(pod: spec, pauseBinary: "/pause").newNamespaces, [.ipc, .pid])
    }

    func testPIDNamespaceOfAnotherContainer() throws {
        var container = ContainerSpec(name: "debug", image: "b", command: ["sh"])
        container.pidNamespace = .target("app")
        let result = try plan(pod(containers: [container]))
        XCTAssertEqual(result.newNamespaces, [.mount, .cgroup])
        XCTAssertEqual(result.pidNamespaceTarget, "app")
        XCTAssertFalse(result.joinsSandboxPIDNamespace)
    }

    func testSandboxWritesThePodsSysctls() {
        var spec = pod(containers: [])
        spec.sysctls = [Sysctl(name: "kernel.shm_rmid_forced", value: "1")]
        XCTAssertEqual(SandboxPlanner.plan(pod: spec, pauseBinary: "/pause").sysctls,
                       [FileWrite(path: "/proc/sys/kernel/shm_rmid_forced", value: "1")])
    }

    func testMaskedAndReadOnlyPathsAsGiven() throws {
        var container = ContainerSpec(name: "app", image: "b", command: ["true"])
        container.securityContext.maskedPaths = ["/bin/ls"]
        container.securityContext.readOnlyPaths = ["/tmp"]
        let mounts = try plan(pod(containers: [container])).mounts
        let masked = mounts.filter(\.mask)
        XCTAssertEqual(masked.map(\.target), ["/bin/ls"])
        XCTAssertFalse(mounts.contains { $0.target == "/proc/kcore" })
        XCTAssertEqual(mounts.filter { $0.flags.contains(.readOnly) && $0.target.hasPrefix("/tmp") }.count, 1)
        container.securityContext.maskedPaths = []
        container.securityContext.readOnlyPaths = []
        let unmasked = try plan(pod(containers: [container])).mounts
        XCTAssertFalse(unmasked.contains { $0.mask || $0.target == "/proc/sys" }, "empty lists: unmasked")
    }

    func testMountPropagationAndRecursiveReadOnly() throws {
        let container = ContainerSpec(name: "app", image: "b", command: ["true"], volumeMounts: [
            VolumeMount(name: "h", mountPath: "/h", propagation: .hostToContainer),
            VolumeMount(name: "b", mountPath: "/b", propagation: .bidirectional),
            VolumeMount(name: "r", mountPath: "/r", readOnly: true, recursiveReadOnly: true),
        ])
        let volumes = ["h", "b", "r"].map { Volume(name: $0, source: .hostPath(path: "/srv/" + $0, type: .unset)) }
        let mounts = try plan(pod(containers: [container], volumes: volumes)).mounts
        XCTAssertEqual(mounts.first { $0.target == "/h" }?.propagation, .slave)
        XCTAssertEqual(mounts.first { $0.target == "/b" }?.propagation, .shared)
        XCTAssertEqual(mounts.first { $0.target == "/r" }?.recursiveReadOnly, true)
        XCTAssertNil(mounts.first { $0.target == "/r" }?.propagation)
    }

    func testNamespacesWithSharedProcessNamespace() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])],
                                  shareProcessNamespace: true))
        XCTAssertEqual(result.newNamespaces, [.mount, .cgroup])
        XCTAssertEqual(result.joinedNamespaces, .pod)
        XCTAssertTrue(result.joinsSandboxPIDNamespace)
    }

    func testOverlayRootfs() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])]))
        XCTAssertEqual(result.rootfs, "/var/lib/x/pods/uid-1/containers/app/rootfs")
        XCTAssertEqual(result.rootfsMount, MountPlan(
            source: "overlay", target: "/var/lib/x/pods/uid-1/containers/app/rootfs", fileSystemType: "overlay",
            flags: [],
            data: "lowerdir=/images/busybox/rootfs,upperdir=/var/lib/x/pods/uid-1/containers/app/upper,"
                + "workdir=/var/lib/x/pods/uid-1/containers/app/work",
            targetKind: .directory))
    }

    func testSecondContainerUsesItsOwnDirectories() throws {
        let spec = pod(containers: [
            ContainerSpec(name: "app", image: "b", command: ["true"]),
            ContainerSpec(name: "sidecar", image: "b", command: ["sleep"], args: ["1"], workingDir: "/srv"),
        ])
        let result = try plan(spec, index: 1)
        XCTAssertEqual(result.argv, ["sleep", "1"])
        XCTAssertEqual(result.rootfs, "/var/lib/x/pods/uid-1/containers/sidecar/rootfs")
        XCTAssertEqual(result.rootfsMount?.data,
                       "lowerdir=/images/busybox/rootfs,upperdir=/var/lib/x/pods/uid-1/containers/sidecar/upper,"
                           + "workdir=/var/lib/x/pods/uid-1/containers/sidecar/work")
        XCTAssertEqual(result.workingDirectory, "/srv")
    }

    func testWorkingDirectoryDevicesSymlinksAndIdentity() throws {
        let result = try plan(pod(containers: [
            ContainerSpec(name: "app", image: "b", command: ["true"]),
        ]))
        XCTAssertNil(result.workingDirectory)
        XCTAssertEqual(result.uid, 0)
        XCTAssertEqual(result.gid, 0)
        XCTAssertEqual(result.supplementaryGroups, [])
        XCTAssertEqual(result.devices, [
            DevicePlan(path: "/dev/null", permissions: 0o666, major: 1, minor: 3),
            DevicePlan(path: "/dev/zero", permissions: 0o666, major: 1, minor: 5),
            DevicePlan(path: "/dev/full", permissions: 0o666, major: 1, minor: 7),
            DevicePlan(path: "/dev/random", permissions: 0o666, major: 1, minor: 8),
            DevicePlan(path: "/dev/urandom", permissions: 0o666, major: 1, minor: 9),
            DevicePlan(path: "/dev/tty", permissions: 0o666, major: 5, minor: 0),
        ])
        XCTAssertEqual(result.symlinks, [
            SymlinkPlan(target: "/proc/self/fd", path: "/dev/fd"),
            SymlinkPlan(target: "/proc/self/fd/0", path: "/dev/stdin"),
            SymlinkPlan(target: "/proc/self/fd/1", path: "/dev/stdout"),
            SymlinkPlan(target: "/proc/self/fd/2", path: "/dev/stderr"),
            SymlinkPlan(target: "pts/ptmx", path: "/dev/ptmx"),
        ])
    }

    // MARK: mounts

    func testMountOrderWithoutVolumes() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])]))
        XCTAssertEqual(result.mounts.map(\.target), [
            "/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup",
        ] + ContainerPlanner.maskedPaths.map(\.target) + ContainerPlanner.readOnlyPaths(rootfs: "/").map(\.target) + [
            "/etc/hostname", "/etc/hosts", "/etc/resolv.conf",
        ])
    }

    func testSystemMountsExactly() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])]))
        XCTAssertEqual(Array(result.mounts.prefix(7)), [
            MountPlan(source: "proc", target: "/proc", fileSystemType: "proc", flags: [.noSuid, .noExec, .noDev]),
            MountPlan(source: "tmpfs", target: "/dev", fileSystemType: "tmpfs", flags: [.noSuid, .strictAtime],
                      data: "mode=755,size=65536k"),
            MountPlan(source: "devpts", target: "/dev/pts", fileSystemType: "devpts", flags: [.noSuid, .noExec],
                      data: "newinstance,ptmxmode=0666,mode=0620,gid=5"),
            MountPlan(source: "/run/x/pods/uid-1/shm", target: "/dev/shm", fileSystemType: nil,
                      flags: [.bind, .recursive, .noSuid, .noDev, .noExec]),
            MountPlan(source: "mqueue", target: "/dev/mqueue", fileSystemType: "mqueue",
                      flags: [.noSuid, .noExec, .noDev]),
            MountPlan(source: "sysfs", target: "/sys", fileSystemType: "sysfs",
                      flags: [.noSuid, .noExec, .noDev, .readOnly]),
            MountPlan(source: "cgroup", target: "/sys/fs/cgroup", fileSystemType: "cgroup2",
                      flags: [.noSuid, .noExec, .noDev, .readOnly]),
        ])
        XCTAssertTrue(result.mounts[5].flags.contains(.readOnly), "/sys must be read-only")
        XCTAssertTrue(result.mounts[6].flags.contains(.readOnly), "/sys/fs/cgroup must be read-only")
        XCTAssertFalse(result.mounts[3].flags.contains(.readOnly), "/dev/shm must be writable")
    }

    func testEtcFilesAreFileBindsFromTheEtcDirectory() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])]))
        XCTAssertEqual(Array(result.mounts.suffix(3)), [
            MountPlan(source: "/run/x/pods/uid-1/etc/hostname", target: "/etc/hostname", fileSystemType: nil,
                      flags: [.bind, .recursive], targetKind: .file),
            MountPlan(source: "/run/x/pods/uid-1/etc/hosts", target: "/etc/hosts", fileSystemType: nil,
                      flags: [.bind, .recursive], targetKind: .file),
            MountPlan(source: "/run/x/pods/uid-1/etc/resolv.conf", target: "/etc/resolv.conf", fileSystemType: nil,
                      flags: [.bind, .recursive], targetKind: .file),
        ])
    }

    func testVolumeMountsFollowSystemMountsInManifestOrder() throws {
        let spec = pod(
            containers: [ContainerSpec(name: "app", image: "b", command: ["true"], volumeMounts: [
                VolumeMount(name: "cache", mountPath: "/cache"),
                VolumeMount(name: "config", mountPath: "/etc/app.conf", readOnly: true),
                VolumeMount(name: "data", mountPath: "/data", subPath: "app/one"),
            ])],
            volumes: [
                Volume(name: "data", source: .hostPath(path: "/srv/data", type: .directory)),
                Volume(name: "cache", source: .emptyDir(medium: .disk, sizeLimit: nil)),
                Volume(name: "config", source: .hostPath(path: "/etc/app.conf", type: .file)),
            ])
        let mounts = try plan(spec).mounts
        XCTAssertEqual(mounts.count, 7 + 10 + 6 + 3 + 3) // system, masked, read-only, /etc files, volumes
        XCTAssertEqual(Array(mounts.suffix(3)), [
            MountPlan(source: "/var/lib/x/pods/uid-1/volumes/cache", target: "/cache", fileSystemType: nil,
                      flags: [.bind, .recursive], targetKind: .directory),
            MountPlan(source: "/etc/app.conf", target: "/etc/app.conf", fileSystemType: nil,
                      flags: [.bind, .recursive, .readOnly], targetKind: .file),
            MountPlan(source: "/srv/data/app/one", target: "/data", fileSystemType: nil,
                      flags: [.bind, .recursive], targetKind: .directory),
        ])
    }

    func testEmptyDirIsABindOfTheVolumeDirectory() throws {
        let spec = pod(
            containers: [ContainerSpec(name: "app", image: "b", command: ["true"],
                                       volumeMounts: [VolumeMount(name: "scratch", mountPath: "/scratch")])],
            volumes: [Volume(name: "scratch", source: .emptyDir(medium: .memory, sizeLimit: "64Mi"))])
        let mount = try XCTUnwrap(try plan(spec).mounts.last)
        XCTAssertEqual(mount, .bind("/var/lib/x/pods/uid-1/volumes/scratch", to: "/scratch"))
        XCTAssertEqual(mount.source, Fixture.layout(spec).volumeDirectory("scratch"))
        XCTAssertNil(mount.fileSystemType)
        XCTAssertEqual(mount.flags, [.bind, .recursive])
        XCTAssertEqual(mount.targetKind, .directory)
    }

    func testHostPathTargetKindFollowsType() throws {
        let expected: [(HostPathType, MountPlan.TargetKind)] = [
            (.unset, .directory), (.directoryOrCreate, .directory), (.directory, .directory),
            (.fileOrCreate, .file), (.file, .file), (.socket, .file), (.charDevice, .file), (.blockDevice, .file),
        ]
        XCTAssertEqual(expected.count, HostPathType.allCases.count, "every HostPathType is covered")
        for (type, kind) in expected {
            let spec = pod(
                containers: [ContainerSpec(name: "app", image: "b", command: ["true"],
                                           volumeMounts: [VolumeMount(name: "host", mountPath: "/host")])],
                volumes: [Volume(name: "host", source: .hostPath(path: "/var/run/thing", type: type))])
            let mount = try XCTUnwrap(try plan(spec).mounts.last)
            XCTAssertEqual(mount.targetKind, kind, "hostPath type \(type.rawValue)")
            XCTAssertEqual(mount.source, "/var/run/thing")
            XCTAssertEqual(mount.target, "/host")
        }
    }

    func testReadOnlyVolumeMountAddsReadOnlyFlag() throws {
        let spec = pod(
            containers: [ContainerSpec(name: "app", image: "b", command: ["true"], volumeMounts: [
                VolumeMount(name: "v", mountPath: "/ro", readOnly: true),
                VolumeMount(name: "v", mountPath: "/rw", readOnly: false),
            ])],
            volumes: [Volume(name: "v", source: .emptyDir(medium: .disk, sizeLimit: nil))])
        let mounts = Array(try plan(spec).mounts.suffix(2))
        XCTAssertEqual(mounts[0].target, "/ro")
        XCTAssertEqual(mounts[0].flags, [.bind, .recursive, .readOnly])
        XCTAssertEqual(mounts[1].target, "/rw")
        XCTAssertEqual(mounts[1].flags, [.bind, .recursive])
    }

    func testSubPathIsAppendedToSource() throws {
        let spec = pod(
            containers: [ContainerSpec(name: "app", image: "b", command: ["true"], volumeMounts: [
                VolumeMount(name: "v", mountPath: "/a", subPath: "logs/app"),
                VolumeMount(name: "v", mountPath: "/b", subPath: ""),
                VolumeMount(name: "h", mountPath: "/c", subPath: "x"),
            ])],
            volumes: [
                Volume(name: "v", source: .emptyDir(medium: .disk, sizeLimit: nil)),
                Volume(name: "h", source: .hostPath(path: "/opt", type: .unset)),
            ])
        let mounts = Array(try plan(spec).mounts.suffix(3))
        XCTAssertEqual(mounts[0].source, "/var/lib/x/pods/uid-1/volumes/v/logs/app")
        XCTAssertEqual(mounts[1].source, "/var/lib/x/pods/uid-1/volumes/v", "an empty subPath mounts the root")
        XCTAssertEqual(mounts[2].source, "/opt/x")
    }

    // MARK: environment

    func testDefaultEnvironment() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])],
                                  hostname: "box"))
        XCTAssertEqual(result.environment, [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOSTNAME=box", "HOME=/root",
        ])
        XCTAssertEqual(result.searchPath, "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        XCTAssertEqual(result.searchPath, ProcessPlan.defaultSearchPath)
    }

    func testHostnameDefaultsToPodName() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])]))
        XCTAssertEqual(result.environment[1], "HOSTNAME=web")
    }

    func testManifestEnvironmentIsAppendedInOrder() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"], env: [
            EnvVar(name: "B", value: "2"), EnvVar(name: "A", value: "1"), EnvVar(name: "EMPTY", value: ""),
        ])]))
        XCTAssertEqual(result.environment, [
            "PATH=" + ProcessPlan.defaultSearchPath, "HOSTNAME=web", "HOME=/root", "B=2", "A=1", "EMPTY=",
        ])
    }

    func testManifestPathOverridesInPlaceAndBecomesSearchPath() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"], env: [
            EnvVar(name: "FOO", value: "bar"), EnvVar(name: "PATH", value: "/x"), EnvVar(name: "HOME", value: "/h"),
        ])]))
        XCTAssertEqual(result.environment, ["PATH=/x", "HOSTNAME=web", "HOME=/h", "FOO=bar"])
        XCTAssertEqual(result.searchPath, "/x")
    }

    func testLaterManifestEntryWins() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"], env: [
            EnvVar(name: "A", value: "first"), EnvVar(name: "B", value: "b"), EnvVar(name: "A", value: "second"),
            EnvVar(name: "PATH", value: "/one"), EnvVar(name: "PATH", value: "/two"),
        ])]))
        XCTAssertEqual(result.environment, ["PATH=/two", "HOSTNAME=web", "HOME=/root", "A=second", "B=b"])
        XCTAssertEqual(result.searchPath, "/two")
    }

    func testValueContainingEqualsSignIsKept() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"], env: [
            EnvVar(name: "OPTS", value: "a=b=c"),
        ])]))
        XCTAssertEqual(result.environment.last, "OPTS=a=b=c")
    }

    // MARK: errors

    func testEmptyCommandAndArgsIsAManifestError() {
        let error = planError(pod(containers: [ContainerSpec(name: "app", image: "b")]))
        XCTAssertEqual(error, ManifestError(path: "spec.containers[0].command",
                                        message: "required: the image has no entrypoint or cmd"))
        XCTAssertEqual(error?.description, "spec.containers[0].command: required: the image has no entrypoint or cmd")
    }

    func testEmptyProgramIsAManifestError() {
        let error = planError(pod(containers: [ContainerSpec(name: "app", image: "b", command: [""], args: ["x"])]))
        XCTAssertEqual(error?.path, "spec.containers[0].command")
    }

    func testEmptyCommandOfSecondContainerNamesItsIndex() {
        let spec = pod(containers: [
            ContainerSpec(name: "a", image: "b", command: ["true"]),
            ContainerSpec(name: "c", image: "b"),
        ])
        XCTAssertEqual(planError(spec, index: 1)?.path, "spec.containers[1].command")
    }

    func testMissingVolumeIsAManifestError() {
        let spec = pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"],
                                                  volumeMounts: [VolumeMount(name: "data", mountPath: "/data")])])
        let error = planError(spec)
        XCTAssertEqual(error, ManifestError(path: "spec.containers[0].volumeMounts[0].name",
                                        message: "no volume named \"data\" in spec.volumes"))
    }

    func testMissingVolumeNamesTheMountIndex() {
        let spec = pod(
            containers: [ContainerSpec(name: "app", image: "b", command: ["true"], volumeMounts: [
                VolumeMount(name: "ok", mountPath: "/ok"),
                VolumeMount(name: "nope", mountPath: "/nope"),
            ])],
            volumes: [Volume(name: "ok", source: .emptyDir(medium: .disk, sizeLimit: nil))])
        XCTAssertEqual(planError(spec)?.path, "spec.containers[0].volumeMounts[1].name")
    }

    // MARK: sandbox

    func testSandboxPlan() {
        let spec = pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])], hostname: "box")
        let result = SandboxPlanner.plan(pod: spec, pauseBinary: "/p")
        XCTAssertEqual(result.newNamespaces, [.network, .ipc, .uts, .pid])
        XCTAssertEqual(result.joinedNamespaces, [])
        XCTAssertFalse(result.joinsSandboxPIDNamespace)
        XCTAssertEqual(result.hostname, "box")
        XCTAssertTrue(result.loopbackUp)
        XCTAssertNil(result.rootfs)
        XCTAssertNil(result.rootfsMount)
        XCTAssertEqual(result.mounts, [])
        XCTAssertEqual(result.devices, [])
        XCTAssertEqual(result.symlinks, [])
        XCTAssertEqual(result.argv, ["/p"])
        XCTAssertEqual(result.environment, [])
        XCTAssertEqual(result.workingDirectory, "/")
    }

    func testSandboxHostnameDefaultsToPodName() {
        let spec = pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])])
        XCTAssertEqual(SandboxPlanner.plan(pod: spec, pauseBinary: "/p").hostname, "web")
    }

    // MARK: value types

    func testBindHelper() {
        XCTAssertEqual(MountPlan.bind("/a", to: "/b", readOnly: true, extraFlags: [.noExec], kind: .file),
                       MountPlan(source: "/a", target: "/b", fileSystemType: nil,
                                 flags: [.bind, .recursive, .noExec, .readOnly], targetKind: .file))
    }

    func testNamespacesDescription() {
        XCTAssertEqual(Namespaces([.mount, .pid]).description, "mnt,pid")
        XCTAssertEqual(Namespaces.pod.description, "net,ipc,uts")
        XCTAssertEqual(Namespaces([.cgroup, .uts, .mount]).description, "mnt,uts,cgroup")
        XCTAssertEqual(Namespaces([]).description, "")
    }

    // MARK: security

    func testDefaultContainerGetsTheDefaultCapabilitiesMaskedPathsAndNoNoNewPrivs() throws {
        let result = try plan(pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])]))
        let expected = Capabilities.defaultSet.intersection(Capabilities.held).rawValue
        XCTAssertEqual(result.capabilities, CapabilityMasks(container: expected))
        XCTAssertFalse(result.noNewPrivileges)
        XCTAssertFalse(result.readOnlyRootfs)
        XCTAssertEqual(result.uid, 0)
        XCTAssertTrue(result.mounts.contains { $0.target == "/proc/kcore" && $0.source == "/dev/null" && $0.optional })
        XCTAssertTrue(result.mounts.contains { $0.target == "/proc/sys" && $0.flags.contains(.readOnly) })
        XCTAssertEqual(result.mounts.first { $0.target == "/sys" }?.flags.contains(.readOnly), true)
        XCTAssertFalse(result.devices.isEmpty)
    }

    func testPrivilegedContainerGetsEverythingAndTheHostDev() throws {
        let container = ContainerSpec(name: "app", image: "b", command: ["true"],
                                      securityContext: SecurityContext(privileged: true))
        let spec = pod(containers: [container])
        let result = try plan(spec)
        XCTAssertEqual(result.capabilities?.bounding, Capabilities.all.intersection(Capabilities.held).rawValue)
        XCTAssertFalse(result.mounts.contains { $0.target == "/proc/kcore" }, "no masked paths")
        XCTAssertEqual(result.mounts.first { $0.target == "/dev" }?.source, "/dev")
        XCTAssertEqual(result.mounts.first { $0.target == "/sys" }?.flags.contains(.readOnly), false)
        XCTAssertTrue(result.devices.isEmpty && result.symlinks.isEmpty, "nothing may be created in the host's /dev")
        XCTAssertEqual(ContainerPlanner(pod: spec, layout: Fixture.layout(spec)).seccompChoice(containerAt: 0), .unconfined)
        XCTAssertTrue(SandboxPlanner.isPrivileged(spec))
        XCTAssertNil(SandboxPlanner.plan(pod: spec, pauseBinary: "/p").capabilities, "a privileged sandbox keeps its capabilities")
    }

    func testUnprivilegedSandboxHasNoCapabilities() {
        let plan = SandboxPlanner.plan(pod: pod(containers: [ContainerSpec(name: "app", image: "b", command: ["true"])]),
                                       pauseBinary: "/p")
        XCTAssertEqual(plan.capabilities, CapabilityMasks(container: 0))
        XCTAssertTrue(plan.noNewPrivileges)
    }

    func testSecurityContextIdsNoNewPrivsAndReadOnlyRoot() throws {
        let container = ContainerSpec(name: "app", image: "b", command: ["true"], securityContext: SecurityContext(
            capabilities: CapabilityChanges(add: ["NET_ADMIN"], drop: ["ALL"]), allowPrivilegeEscalation: false,
            runAsUser: 1000, runAsGroup: 3000, readOnlyRootFilesystem: true))
        var spec = pod(containers: [container])
        spec.securityContext = PodSecurityContext(supplementalGroups: [4000, 5000])
        let result = try plan(spec)
        XCTAssertEqual(result.uid, 1000)
        XCTAssertEqual(result.gid, 3000)
        XCTAssertEqual(result.supplementaryGroups, [4000, 5000])
        XCTAssertTrue(result.noNewPrivileges)
        XCTAssertTrue(result.readOnlyRootfs)
        let netAdmin = try XCTUnwrap(Capabilities.number(named: "NET_ADMIN"))
        XCTAssertEqual(result.capabilities?.bounding, CapabilitySet(numbers: [netAdmin]).intersection(Capabilities.held).rawValue)
    }

    func testSecurityErrorsNameTheField() {
        let unknown = ContainerSpec(name: "app", image: "b", command: ["true"], securityContext: SecurityContext(
            capabilities: CapabilityChanges(add: ["CHOWN", "NOPE"], drop: [])))
        XCTAssertThrowsError(try plan(pod(containers: [unknown]))) { error in
            XCTAssertEqual((error as? ManifestError)?.description,
                           "spec.containers[0].securityContext.capabilities.add[1]: unknown capability \"NOPE\"")
        }
        let root = ContainerSpec(name: "app", image: "b", command: ["true"], securityContext: SecurityContext(runAsNonRoot: true))
        XCTAssertThrowsError(try plan(pod(containers: [root]))) { error in
            XCTAssertEqual((error as? ManifestError)?.path, "spec.containers[0].securityContext.runAsNonRoot")
        }
    }
}
