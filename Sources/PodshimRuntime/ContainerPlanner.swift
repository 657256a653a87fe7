import PodshimSecurity
import PodshimSpec
import PodshimProcess

/// The names of a container's fields in the input it came from, so that a planning error names
/// the field its author wrote: `spec.containers[2].command` in a manifest, `config.command` in a
/// CRI CreateContainer. Each front end builds its own (the CRI one is in `CRITranslation`).
public struct ContainerFields: Sendable {
    public enum CapabilityList: String, Sendable { case add, drop }

    public var command: String
    /// The field that names the volume of volume mount `index` (a manifest's `volumeMounts[i].name`).
    public var volumeMountName: @Sendable (_ index: Int) -> String
    public var capability: @Sendable (_ list: CapabilityList, _ index: Int) -> String
    public var runAsNonRoot: String
    public var seccompProfile: String

    public init(command: String, volumeMountName: @escaping @Sendable (Int) -> String,
                capability: @escaping @Sendable (CapabilityList, Int) -> String,
                runAsNonRoot: String, seccompProfile: String) {
        self.command = command
        self.volumeMountName = volumeMountName
        self.capability = capability
        self.runAsNonRoot = runAsNonRoot
        self.seccompProfile = seccompProfile
    }

    /// Container `index` of a Pod manifest.
    public static func manifest(containerAt index: Int) -> ContainerFields {
        let container = "spec.containers[\(index)]"
        return ContainerFields(
            command: container + ".command",
            volumeMountName: { "\(container).volumeMounts[\($0)].name" },
            capability: { "\(container).securityContext.capabilities.\($0.rawValue)[\($1)]" },
            runAsNonRoot: container + ".securityContext.runAsNonRoot",
            seccompProfile: container + ".securityContext.seccompProfile")
    }
}

/// Turns a validated pod and one of its containers into a ``ProcessPlan``. Pure: no file is
/// touched, so the whole translation is tested without root.
public struct ContainerPlanner: Sendable {
    public let pod: PodSpec
    public let layout: PodLayout

    public init(pod: PodSpec, layout: PodLayout) {
        self.pod = pod
        self.layout = layout
    }

    /// The plan for the container at `index`, whose image resolved to `imageRootfs`. An error names
    /// the field through `fields`, the naming of the input the container came from (the manifest's
    /// `spec.containers[index]` unless told otherwise).
    public func plan(containerAt index: Int, imageRootfs: String, fields: ContainerFields? = nil) throws(ManifestError) -> ProcessPlan {
        let container = pod.containers[index]
        let fields = fields ?? .manifest(containerAt: index)
        let argv = container.command + container.args
        guard let program = argv.first, !program.isEmpty else {
            throw ManifestError(path: fields.command, message: "required: the image has no entrypoint or cmd")
        }

        let environment = Self.environment(for: container, hostname: pod.hostname)
        let searchPath = environment.last { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) }
            ?? ProcessPlan.defaultSearchPath

        let name = container.name
        let overlay = MountPlan(
            source: "overlay", target: layout.rootfsDirectory(name), fileSystemType: "overlay",
            data: "lowerdir=\(imageRootfs),upperdir=\(layout.upperDirectory(name)),workdir=\(layout.workDirectory(name))")

        let context = container.securityContext
        let privileged = context.privileged == true
        let shm = pod.hostIPC ? "/dev/shm" : layout.shmDirectory
        var mounts = Self.systemMounts(shmDirectory: shm, privileged: privileged)
        if !privileged {
            let masked = context.maskedPaths.map { $0.map(MountPlan.masked) } ?? Self.maskedPaths
            let readOnly = context.readOnlyPaths.map { paths in
                paths.map { Self.readOnlyPath($0, rootfs: layout.rootfsDirectory(name)) }
            } ?? Self.readOnlyPaths(rootfs: layout.rootfsDirectory(name))
            mounts += masked + readOnly
        }
        mounts += ["hostname", "hosts", "resolv.conf"].map {
            MountPlan.bind(layout.etcDirectory + "/" + $0, to: "/etc/" + $0, kind: .file)
        }
        for (mountIndex, volumeMount) in container.volumeMounts.enumerated() {
            mounts.append(try volumeMountPlan(volumeMount, field: fields.volumeMountName(mountIndex)))
        }

        // Never more than podshim holds itself (the kernel would refuse the capset).
        let capabilities: CapabilitySet
        if privileged {
            capabilities = Capabilities.all.intersection(Capabilities.held)
        } else {
            do {
                capabilities = try Capabilities.resolve(add: context.capabilities?.add ?? [], drop: context.capabilities?.drop ?? [])
                    .intersection(Capabilities.held)
            } catch {
                throw ManifestError(path: fields.capability(error.list == "drop" ? .drop : .add, error.index),
                                    message: error.description)
            }
        }
        // Local images carry no user: without runAsUser the container runs as root (uid 0).
        let uid = container.effectiveRunAsUser(pod: pod) ?? 0
        if container.effectiveRunAsNonRoot(pod: pod) == true && uid == 0 {
            throw ManifestError(path: fields.runAsNonRoot,
                                message: "the container would run as root (uid 0): set runAsUser to a non-zero uid")
        }

        let pidMode = pod.pidNamespace(of: container)
        var targetName: String?
        if case .target(let name) = pidMode { targetName = name }
        var groups: [UInt32] = []
        for group in pod.securityContext.supplementalGroups + (context.supplementalGroups ?? [])
            where !groups.contains(UInt32(group)) {
            groups.append(UInt32(group))
        }
        var plan = ProcessPlan(
            newNamespaces: pidMode == .container ? [.mount, .pid, .cgroup] : [.mount, .cgroup],
            joinedNamespaces: Self.sandboxNamespaces(pod),
            joinsSandboxPIDNamespace: pidMode == .pod,
            rootfs: layout.rootfsDirectory(name),
            rootfsMount: overlay,
            mounts: mounts,
            // A privileged container gets the host's /dev itself: nothing may be created in it.
            devices: privileged ? [] : Self.devices,
            symlinks: privileged ? [] : Self.symlinks,
            readOnlyRootfs: context.readOnlyRootFilesystem == true,
            uid: UInt32(uid),
            gid: UInt32(container.effectiveRunAsGroup(pod: pod) ?? 0),
            supplementaryGroups: groups,
            capabilities: CapabilityMasks(container: capabilities.rawValue),
            noNewPrivileges: context.allowPrivilegeEscalation == false,
            argv: argv,
            environment: environment,
            searchPath: searchPath,
            workingDirectory: container.workingDir)
        plan.pidNamespaceTarget = targetName
        plan.controllingTerminal = container.tty
        return plan
    }

    /// The namespaces the pod's pause process owns (and its containers join): network, IPC and
    /// UTS, less those the pod takes from the host.
    public static func sandboxNamespaces(_ pod: PodSpec) -> Namespaces {
        var namespaces: Namespaces = []
        if !pod.hostNetwork { namespaces.formUnion([.network, .uts]) } // host network keeps the host's UTS too
        if !pod.hostIPC { namespaces.insert(.ipc) }
        return namespaces
    }

    private func volumeMountPlan(_ mount: VolumeMount, field: String) throws(ManifestError) -> MountPlan {
        guard let volume = pod.volume(named: mount.name) else {
            throw ManifestError(path: field, message: "no volume named \"\(mount.name)\" in spec.volumes")
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
        var plan = MountPlan.bind(source, to: mount.mountPath, readOnly: mount.readOnly, kind: kind)
        switch mount.propagation {
        case .none: break // private: what every mount in the container's namespace already is
        case .hostToContainer: plan.propagation = .slave
        case .bidirectional: plan.propagation = .shared
        }
        plan.recursiveReadOnly = mount.recursiveReadOnly
        return plan
    }

    /// PATH (when missing), HOSTNAME, HOME and with a tty TERM=xterm (as containerd and CRI-O
    /// set it), then the manifest's env in order (later wins).
    static func environment(for container: ContainerSpec, hostname: String) -> [String] {
        var entries: [(String, String)] = [
            ("PATH", ProcessPlan.defaultSearchPath), ("HOSTNAME", hostname), ("HOME", "/root"),
        ]
        if container.tty { entries.append(("TERM", "xterm")) }
        for variable in container.env {
            if let existing = entries.firstIndex(where: { $0.0 == variable.name }) {
                entries[existing].1 = variable.value
            } else {
                entries.append((variable.name, variable.value))
            }
        }
        return entries.map { "\($0.0)=\($0.1)" }
    }

    /// /proc, /dev (with pts, the pod's shm, mqueue), /sys and its cgroup2 — in the order they must be
    /// mounted. Read-only /sys and /sys/fs/cgroup and a fresh /dev for a normal container; a privileged
    /// one gets them writable and the host's /dev (the targets inside it are never created).
    static func systemMounts(shmDirectory: String, privileged: Bool = false) -> [MountPlan] {
        let readOnly: MountFlags = privileged ? [] : [.readOnly]
        let dev = privileged
            ? MountPlan.bind("/dev", to: "/dev", extraFlags: [.noSuid])
            : MountPlan(source: "tmpfs", target: "/dev", fileSystemType: "tmpfs", flags: [.noSuid, .strictAtime],
                        data: "mode=755,size=65536k")
        return [
            MountPlan(source: "proc", target: "/proc", fileSystemType: "proc", flags: [.noSuid, .noExec, .noDev]),
            dev,
            MountPlan(source: "devpts", target: "/dev/pts", fileSystemType: "devpts", flags: [.noSuid, .noExec],
                      data: "newinstance,ptmxmode=0666,mode=0620,gid=5", optional: privileged),
            MountPlan(source: shmDirectory, target: "/dev/shm", fileSystemType: nil,
                      flags: [.bind, .recursive, .noSuid, .noDev, .noExec], optional: privileged),
            MountPlan(source: "mqueue", target: "/dev/mqueue", fileSystemType: "mqueue",
                      flags: [.noSuid, .noExec, .noDev], optional: privileged),
            MountPlan(source: "sysfs", target: "/sys", fileSystemType: "sysfs",
                      flags: MountFlags([.noSuid, .noExec, .noDev]).union(readOnly)),
            // In the container's cgroup namespace, so it sees its own cgroup as the root.
            MountPlan(source: "cgroup", target: "/sys/fs/cgroup", fileSystemType: "cgroup2",
                      flags: MountFlags([.noSuid, .noExec, .noDev]).union(readOnly)),
        ]
    }

    /// Paths hidden from a non-privileged container (containerd's list): files get /dev/null
    /// bound over them, directories an empty read-only tmpfs. Skipped where the kernel lacks them.
    static let maskedPaths: [MountPlan] = {
        let files = ["/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                     "/proc/sched_debug"]
        let directories = ["/proc/acpi", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"]
        return files.map {
            MountPlan(source: "/dev/null", target: $0, fileSystemType: nil, flags: [.bind, .readOnly],
                      targetKind: .file, optional: true)
        } + directories.map {
            MountPlan(source: "tmpfs", target: $0, fileSystemType: "tmpfs", flags: [.readOnly], optional: true)
        }
    }()

    /// One read-only path (see ``readOnlyPaths(rootfs:)``).
    static func readOnlyPath(_ path: String, rootfs: String) -> MountPlan {
        MountPlan(source: rootfs + path, target: path, fileSystemType: nil, flags: [.bind, .recursive, .readOnly],
                  optional: true)
    }

    /// Paths a non-privileged container may read but not write (containerd's list): bound onto
    /// themselves read-only. The source is the container's own path, seen from the child before
    /// pivot_root, under the rootfs.
    static func readOnlyPaths(rootfs: String) -> [MountPlan] {
        ["/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"].map {
            readOnlyPath($0, rootfs: rootfs)
        }
    }

    /// Which seccomp profile the container at `index` gets: none when privileged, else its own or
    /// the pod's `seccompProfile`, RuntimeDefault when neither says.
    public func seccompChoice(containerAt index: Int) -> SeccompChoice {
        let container = pod.containers[index]
        if container.securityContext.privileged == true { return .unconfined }
        guard let profile = container.effectiveSeccompProfile(pod: pod) else { return .runtimeDefault }
        switch profile.type {
        case .runtimeDefault: return .runtimeDefault
        case .unconfined: return .unconfined
        case .localhost: return .localhost(profile.localhostProfile ?? "")
        }
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
///
/// The pause process needs no privilege: it runs with no capability and no_new_privs, unless a
/// container of the pod is privileged — then the sandbox is privileged too (as containerd requires).
public enum SandboxPlanner {
    public static func plan(pod: PodSpec, pauseBinary: String, privileged: Bool? = nil) -> ProcessPlan {
        let privileged = privileged ?? isPrivileged(pod)
        var namespaces = ContainerPlanner.sandboxNamespaces(pod)
        if !pod.hostPID { namespaces.insert(.pid) }
        var plan = ProcessPlan(
            newNamespaces: namespaces,
            hostname: namespaces.contains(.uts) ? pod.hostname : nil,
            loopbackUp: namespaces.contains(.network),
            capabilities: privileged ? nil : CapabilityMasks(container: 0),
            noNewPrivileges: !privileged,
            argv: [pauseBinary],
            environment: [],
            workingDirectory: "/")
        plan.sysctls = pod.sysctls.map { FileWrite(path: $0.procPath, value: $0.value) }
        return plan
    }

    /// A pod with a privileged container has a privileged sandbox.
    public static func isPrivileged(_ pod: PodSpec) -> Bool {
        pod.containers.contains { $0.securityContext.privileged == true }
    }
}

/// The seccomp profile a container runs under.
public enum SeccompChoice: Equatable, Sendable {
    case unconfined
    case runtimeDefault
    /// A profile file: absolute, or relative to `<root>/seccomp`.
    case localhost(String)
}
