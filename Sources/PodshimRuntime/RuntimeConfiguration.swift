import PodshimNetwork

/// How pods are networked.
public enum NetworkSetting: Sendable, Equatable {
    /// Each pod gets its own network namespace with only loopback up.
    case none
    /// CNI plugins: the default network of the configuration directory; a plugin call that takes
    /// longer than `timeoutSeconds` is killed.
    case cni(CNIConfigurationDirectory, timeoutSeconds: Double)
}

/// Where podshim keeps things on the host.
public struct RuntimeConfiguration: Sendable, Equatable {
    /// Volatile state: per-pod state files, the pod's /dev/shm, generated /etc files. Default /run/podshim.
    public var stateDirectory: String
    /// Persistent data: container layers (overlay upper/work) and emptyDir volumes. Default /var/lib/podshim.
    public var rootDirectory: String
    /// The image store: `<imageDirectory>/<name>/rootfs`. Default /var/lib/podshim/images.
    public var imageDirectory: String
    /// Container logs: `<logDirectory>/<namespace>_<name>_<uid>/<container>/<attempt>.log`. Default /var/log/podshim/pods.
    public var logDirectory: String
    /// The static pause binary.
    public var pauseBinary: String
    /// The cgroup under which `podshim/pod-<uid>/` is created; nil = the cgroup v2 mount point.
    public var cgroupRoot: String?
    /// Refuse to start pods when cgroup v2 cannot enforce cpu, memory and pids limits.
    public var requireCgroups: Bool
    /// `pids.max` of every pod cgroup (the kubelet's podPidsLimit); nil = no limit.
    public var podPidsLimit: Int64?
    /// How a CRI `cgroup_parent` is written: a cgroupfs path or a systemd slice name.
    public var cgroupDriver: CgroupDriver
    /// Pod networking (host-network pods never take part).
    public var network: NetworkSetting = .none

    /// The CNI driver for ``network`` (nil for `.none`): attachments cached under the root
    /// directory (host-local leases outlive a reboot, so must the means to release them), network
    /// namespaces pinned under the state directory.
    /// `forCleanup`: one even with `.none`, to release what an earlier podshim with CNI attached
    /// (the cache holds each attachment's configuration; plugins are looked for in the default places).
    public func cniManager(forCleanup: Bool = false) -> CNIManager? {
        var directory = CNIConfigurationDirectory()
        var timeout = 60.0
        if case .cni(let configured, let seconds) = network {
            directory = configured
            timeout = seconds
        } else if !forCleanup {
            return nil
        }
        return CNIManager.shared(.init(configuration: directory, cacheDirectory: rootDirectory + "/cni/results",
                                       pinDirectory: stateDirectory + "/netns", timeoutSeconds: timeout))
    }

    public init(
        stateDirectory: String = "/run/podshim", rootDirectory: String = "/var/lib/podshim",
        imageDirectory: String? = nil, logDirectory: String = "/var/log/podshim/pods",
        pauseBinary: String, cgroupRoot: String? = nil, requireCgroups: Bool = false, podPidsLimit: Int64? = nil,
        cgroupDriver: CgroupDriver = .cgroupfs
    ) {
        self.cgroupDriver = cgroupDriver
        self.cgroupRoot = cgroupRoot
        self.requireCgroups = requireCgroups
        self.podPidsLimit = podPidsLimit
        self.stateDirectory = stateDirectory
        self.rootDirectory = rootDirectory
        self.imageDirectory = imageDirectory ?? rootDirectory + "/images"
        self.logDirectory = logDirectory
        self.pauseBinary = pauseBinary
    }
}

/// The kubelet's `cgroupDriver`: how it names the pod cgroups it sends as `cgroup_parent`.
public enum CgroupDriver: String, Sendable, Equatable, CaseIterable {
    /// `/kubepods/burstable/pod<uid>`: a path under the cgroup mount.
    case cgroupfs
    /// `kubepods-burstable-pod<uid_>.slice`: a slice name, nested by its dashes.
    case systemd
}
