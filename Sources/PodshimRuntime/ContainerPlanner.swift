import PodshimSpec

/// Turns a validated pod and one of its containers into a ``ProcessPlan``. Pure: no file is
/// touched, so the whole translation is tested without root.
public struct ContainerPlanner: Sendable {
    public let pod: PodSpec
    public let layout: PodLayout

    public init(pod: PodSpec, layout: PodLayout) {
        self.pod = pod
        self.layout = layout
    }

    /// The plan for the container at `index`, whose image resolved to `imageRootfs`.
    public func plan(containerAt index: Int, imageRootfs: String) throws(ManifestError) -> ProcessPlan {
        let container = pod.containers[index]
        let field = "spec.containers[\(index)]"
        let argv = container.command + container.args
        guard let program = argv.first, !program.isEmpty else {
            throw ManifestError(path: field + ".command", message: "required: a local image has no entrypoint")
        }

        let environment = Self.environment(for: container, hostname: pod.hostname)
        let searchPath = environment.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) }
            ?? ProcessPlan.defaultSearchPath

        let name = container.name
        let overlay = MountPlan(
            source: "overlay", target: layout.rootfsDirectory(name), fileSystemType: "overlay",
            data: "lowerdir=\(imageRootfs),upperdir=\(layout.upperDirectory(name)),workdir=\(layout.workDirectory(name))")

        var mounts = Self.systemMounts(shmDirectory: layout.shmDirectory)
        mounts += ["hostname", "hosts", "resolv.conf"].map {
            MountPlan.bind(layout.etcDirectory + "/" + $0, to: "/etc/" + $0, kind: .file)
        }
        for (mountIndex, volumeMount) in container.volumeMounts.enumerated() {
            mounts.append(try volumeMountPlan(volumeMount, field: field + ".volumeMounts[\(mountIndex)]"))
        }

        return ProcessPlan(
            newNamespaces: pod.shareProcessNamespace ? [.mount, .cgroup] : [.mount, .pid, .cgroup],
            joinedNamespaces: .pod,
            joinsSandboxPIDNamespace: pod.shareProcessNamespace,
            rootfs: layout.rootfsDirectory(name),
            rootfsMount: overlay,
            mounts: mounts,
            devices: Self.devices,
            symlinks: Self.symlinks,
            argv: argv,
            environment: environment,
            searchPath: searchPath,
            workingDirectory: container.workingDir)
    }

    private func volumeMountPlan(_ mount: VolumeMount, field: String) throws(ManifestError) -> MountPlan {
        guard let volume = pod.volume(named: mount.name) else {
            throw ManifestError(path: field + ".name", message: "no volume named \"\(mount.name)\" in spec.volumes")
        }
        var source: String
        var kind = MountPlan.TargetKind.directory
        switch volume.source {
        case .emptyDir:
            source = layout.volumeDirectory(volume.name)
        case .hostPath(let path, let type):
            source = path
            if [.file, .fileOrCreate, .socket, .charDevice, .blockDevice].contains(type) { kind = .file }
        }
        if let subPath = mount.subPath, !subPath.isEmpty {
            source += "/" + subPath
        }
        return .bind(source, to: mount.mountPath, readOnly: mount.readOnly, kind: kind)
    }

    /// PATH (when missing), HOSTNAME and HOME, then the manifest's env in order (later wins).
    static func environment(for container: ContainerSpec, hostname: String) -> [String] {
        var entries: [(String, String)] = [
            ("PATH", ProcessPlan.defaultSearchPath), ("HOSTNAME", hostname), ("HOME", "/root"),
        ]
        for variable in container.env {
            if let existing = entries.firstIndex(where: { $0.0 == variable.name }) {
                entries[existing].1 = variable.value
            } else {
                entries.append((variable.name, variable.value))
            }
        }
        return entries.map { "\($0.0)=\($0.1)" }
    }

    /// /proc, /dev (with pts, the pod's shm, mqueue), /sys read-only — in the order they must be mounted.
    static func systemMounts(shmDirectory: String) -> [MountPlan] {
        [
            MountPlan(source: "proc", target: "/proc", fileSystemType: "proc", flags: [.noSuid, .noExec, .noDev]),
            MountPlan(source: "tmpfs", target: "/dev", fileSystemType: "tmpfs", flags: [.noSuid, .strictAtime],
                      data: "mode=755,size=65536k"),
            MountPlan(source: "devpts", target: "/dev/pts", fileSystemType: "devpts", flags: [.noSuid, .noExec],
                      data: "newinstance,ptmxmode=0666,mode=0620,gid=5"),
            .bind(shmDirectory, to: "/dev/shm", extraFlags: [.noSuid, .noDev, .noExec]),
            MountPlan(source: "mqueue", target: "/dev/mqueue", fileSystemType: "mqueue",
                      flags: [.noSuid, .noExec, .noDev]),
            MountPlan(source: "sysfs", target: "/sys", fileSystemType: "sysfs",
                      flags: [.noSuid, .noExec, .noDev, .readOnly]),
            // In the container's cgroup namespace, so it sees its own cgroup as the root.
            MountPlan(source: "cgroup", target: "/sys/fs/cgroup", fileSystemType: "cgroup2",
                      flags: [.noSuid, .noExec, .noDev, .readOnly]),
        ]
    }

    /// The device nodes every container gets (as runc's default list).
    static let devices: [DevicePlan] = [
        DevicePlan(path: "/dev/null", major: 1, minor: 3),
        DevicePlan(path: "/dev/zero", major: 1, minor: 5),
        DevicePlan(path: "/dev/full", major: 1, minor: 7),
        DevicePlan(path: "/dev/random", major: 1, minor: 8),
        DevicePlan(path: "/dev/urandom", major: 1, minor: 9),
        DevicePlan(path: "/dev/tty", major: 5, minor: 0),
    ]

    static let symlinks: [SymlinkPlan] = [
        SymlinkPlan(target: "/proc/self/fd", path: "/dev/fd"),
        SymlinkPlan(target: "/proc/self/fd/0", path: "/dev/stdin"),
        SymlinkPlan(target: "/proc/self/fd/1", path: "/dev/stdout"),
        SymlinkPlan(target: "/proc/self/fd/2", path: "/dev/stderr"),
        SymlinkPlan(target: "pts/ptmx", path: "/dev/ptmx"),
    ]
}

/// The pod's sandbox: the pause process in new network, IPC, UTS and PID namespaces.
public enum SandboxPlanner {
    public static func plan(pod: PodSpec, pauseBinary: String) -> ProcessPlan {
        ProcessPlan(
            newNamespaces: [.network, .ipc, .uts, .pid],
            hostname: pod.hostname,
            loopbackUp: true,
            argv: [pauseBinary],
            environment: [],
            workingDirectory: "/")
    }
}
