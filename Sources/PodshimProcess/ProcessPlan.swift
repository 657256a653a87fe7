/// Everything needed to start one process in its namespaces and root filesystem, computed before
/// the clone. A pure value: ``Spawner`` turns it into the C configuration the child runs.
public struct ProcessPlan: Equatable, Sendable {
    /// New namespaces created with the process.
    public var newNamespaces: Namespaces
    /// Namespaces joined from the pod's sandbox (pause) process with setns.
    public var joinedNamespaces: Namespaces
    /// Born into the sandbox's PID namespace (`shareProcessNamespace: true`).
    public var joinsSandboxPIDNamespace: Bool
    /// Born into the PID namespace of this other container of the pod (the CRI's TARGET mode).
    public var pidNamespaceTarget: String?
    /// Sysctls written in the new namespaces before anything else changes (the pause process:
    /// the pod's namespaced sysctls).
    public var sysctls: [FileWrite] = []
    /// /proc/self/oom_score_adj (-1000…1000); nil leaves the inherited value.
    public var oomScoreAdjust: Int32?
    /// Set in a new UTS namespace.
    public var hostname: String?
    /// Bring `lo` up in a new network namespace.
    public var loopbackUp: Bool

    /// Host path of the root directory; nil = run in the host's filesystem (the pause process).
    public var rootfs: String?
    /// Mounted on ``rootfs`` first (the overlay).
    public var rootfsMount: MountPlan?
    /// Mounted inside the root filesystem, in order.
    public var mounts: [MountPlan]
    public var devices: [DevicePlan]
    public var symlinks: [SymlinkPlan]

    /// Remount the root filesystem read-only after the mounts (`readOnlyRootFilesystem`).
    public var readOnlyRootfs: Bool

    public var uid: UInt32
    public var gid: UInt32
    public var supplementaryGroups: [UInt32]

    /// The capability sets to apply; nil keeps what the process inherits.
    public var capabilities: CapabilityMasks?
    /// prctl(PR_SET_NO_NEW_PRIVS) (`allowPrivilegeEscalation: false`).
    public var noNewPrivileges: Bool
    /// stdin is a terminal that becomes the process's controlling terminal (a tty exec).
    public var controllingTerminal = false
    /// The compiled seccomp program (classic BPF), or nil for none.
    public var seccompFilter: [UInt8]?

    /// argv; `argv[0]` is the program, looked up in ``searchPath`` when it has no `/`.
    public var argv: [String]
    /// `NAME=value` entries.
    public var environment: [String]
    public var searchPath: String
    public var workingDirectory: String?

    public init(
        newNamespaces: Namespaces = [], joinedNamespaces: Namespaces = [], joinsSandboxPIDNamespace: Bool = false,
        hostname: String? = nil, loopbackUp: Bool = false, rootfs: String? = nil, rootfsMount: MountPlan? = nil,
        mounts: [MountPlan] = [], devices: [DevicePlan] = [], symlinks: [SymlinkPlan] = [],
        readOnlyRootfs: Bool = false,
        uid: UInt32 = 0, gid: UInt32 = 0, supplementaryGroups: [UInt32] = [],
        capabilities: CapabilityMasks? = nil, noNewPrivileges: Bool = false, seccompFilter: [UInt8]? = nil,
        argv: [String], environment: [String] = [], searchPath: String = ProcessPlan.defaultSearchPath,
        workingDirectory: String? = nil
    ) {
        self.newNamespaces = newNamespaces
        self.joinedNamespaces = joinedNamespaces
        self.joinsSandboxPIDNamespace = joinsSandboxPIDNamespace
        self.hostname = hostname
        self.loopbackUp = loopbackUp
        self.rootfs = rootfs
        self.rootfsMount = rootfsMount
        self.mounts = mounts
        self.devices = devices
        self.symlinks = symlinks
        self.readOnlyRootfs = readOnlyRootfs
        self.capabilities = capabilities
        self.noNewPrivileges = noNewPrivileges
        self.seccompFilter = seccompFilter
        self.uid = uid
        self.gid = gid
        self.supplementaryGroups = supplementaryGroups
        self.argv = argv
        self.environment = environment
        self.searchPath = searchPath
        self.workingDirectory = workingDirectory
    }

    /// Namespaces the process shares with whatever it joins or inherits (neither new nor
    /// joined from the sandbox): the host's, for host network / IPC / PID pods.
    public var inheritedNamespaces: Namespaces {
        Namespaces([.network, .ipc, .uts, .pid]).subtracting(newNamespaces).subtracting(joinedNamespaces)
    }

    /// The PATH a container gets when neither the image nor the manifest sets one (as containerd).
    public static let defaultSearchPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

/// A value written to a file (a sysctl under /proc/sys).
public struct FileWrite: Equatable, Sendable {
    public var path: String
    public var value: String

    public init(path: String, value: String) {
        self.path = path
        self.value = value
    }
}

/// The five capability sets of a process, as bitmasks of capability numbers.
public struct CapabilityMasks: Equatable, Sendable {
    public var bounding: UInt64
    public var permitted: UInt64
    public var effective: UInt64
    public var inheritable: UInt64
    public var ambient: UInt64

    /// What containerd gives a container: the set in bounding, permitted and effective;
    /// nothing inheritable or ambient (so a non-root user ends up with no effective capability).
    public init(container set: UInt64) {
        self.init(bounding: set, permitted: set, effective: set, inheritable: 0, ambient: 0)
    }

    public init(bounding: UInt64, permitted: UInt64, effective: UInt64, inheritable: UInt64, ambient: UInt64) {
        self.bounding = bounding
        self.permitted = permitted
        self.effective = effective
        self.inheritable = inheritable
        self.ambient = ambient
    }
}

/// A set of Linux namespaces.
public struct Namespaces: OptionSet, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let mount = Namespaces(rawValue: 1 << 0)
    public static let pid = Namespaces(rawValue: 1 << 1)
    public static let network = Namespaces(rawValue: 1 << 2)
    public static let ipc = Namespaces(rawValue: 1 << 3)
    public static let uts = Namespaces(rawValue: 1 << 4)
    public static let cgroup = Namespaces(rawValue: 1 << 5)

    /// What a pod's sandbox holds and its containers join.
    public static let pod: Namespaces = [.network, .ipc, .uts]

    public var description: String {
        let names: [(Namespaces, String)] = [
            (.mount, "mnt"), (.pid, "pid"), (.network, "net"), (.ipc, "ipc"), (.uts, "uts"), (.cgroup, "cgroup"),
        ]
        return names.filter { contains($0.0) }.map(\.1).joined(separator: ",")
    }
}

/// One mount inside a container.
public struct MountPlan: Equatable, Sendable {
    public enum TargetKind: Sendable { case directory, file }

    public var source: String?
    /// Absolute path inside the container.
    public var target: String
    /// nil for a bind mount.
    public var fileSystemType: String?
    public var flags: MountFlags
    public var data: String?
    public var targetKind: TargetKind
    /// Skipped when the target does not exist (masked paths), instead of creating it.
    public var optional: Bool
    /// Propagation set on the mount once it is in place; nil leaves what it inherits (private).
    public var propagation: Propagation?
    /// Make the mount and everything below it read-only (mount_setattr AT_RECURSIVE).
    public var recursiveReadOnly: Bool = false
    /// A masked path: an empty read-only tmpfs over a directory, /dev/null over anything else
    /// (decided in the child by what the target is).
    public var mask: Bool = false
    /// A detached mount tree (open_tree) to move into place instead of mounting ``source`` by
    /// name: what podshim opened and checked is what gets mounted. Owned by whoever set it.
    public var sourceTree: Int32?

    /// Mount propagation: the kernel's private, slave and shared, applied recursively.
    public enum Propagation: Equatable, Sendable {
        case `private`, slave, shared
    }

    public init(
        source: String?, target: String, fileSystemType: String?, flags: MountFlags = [], data: String? = nil,
        targetKind: TargetKind = .directory, optional: Bool = false
    ) {
        self.optional = optional
        self.source = source
        self.target = target
        self.fileSystemType = fileSystemType
        self.flags = flags
        self.data = data
        self.targetKind = targetKind
    }

    /// A masked path (see ``mask``).
    public static func masked(_ target: String) -> MountPlan {
        var plan = MountPlan(source: "/dev/null", target: target, fileSystemType: nil, flags: [.bind, .readOnly],
                             targetKind: .file, optional: true)
        plan.mask = true
        return plan
    }

    /// A recursive bind mount of a host path.
    public static func bind(
        _ source: String, to target: String, readOnly: Bool = false, extraFlags: MountFlags = [],
        kind: TargetKind = .directory
    ) -> MountPlan {
        var flags: MountFlags = [.bind, .recursive]
        flags.formUnion(extraFlags)
        if readOnly { flags.insert(.readOnly) }
        return MountPlan(source: source, target: target, fileSystemType: nil, flags: flags, targetKind: kind)
    }
}

/// The mount(2) flags podshim uses, independent of the C constants so plans stay pure.
public struct MountFlags: OptionSet, Hashable, Sendable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let readOnly = MountFlags(rawValue: 1 << 0)
    public static let noSuid = MountFlags(rawValue: 1 << 1)
    public static let noDev = MountFlags(rawValue: 1 << 2)
    public static let noExec = MountFlags(rawValue: 1 << 3)
    public static let bind = MountFlags(rawValue: 1 << 4)
    public static let recursive = MountFlags(rawValue: 1 << 5)
    public static let strictAtime = MountFlags(rawValue: 1 << 6)
    public static let relatime = MountFlags(rawValue: 1 << 7)
}

/// A character device node created in the container's /dev.
public struct DevicePlan: Equatable, Sendable {
    public var path: String
    public var permissions: UInt32
    public var major: UInt32
    public var minor: UInt32

    public init(path: String, permissions: UInt32 = 0o666, major: UInt32, minor: UInt32) {
        self.path = path
        self.permissions = permissions
        self.major = major
        self.minor = minor
    }
}

/// A symlink created in the container.
public struct SymlinkPlan: Equatable, Sendable {
    public var target: String
    public var path: String

    public init(target: String, path: String) {
        self.target = target
        self.path = path
    }
}
