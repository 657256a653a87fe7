/// The validated model of a Kubernetes-style Pod manifest.
///
/// Values of these types are produced by ``ManifestParser`` only after every field has been
/// checked, so the runtime never needs to re-validate them. Later capabilities (lifecycle
/// hooks, probes) add fields here.

/// A pod: a sandbox (network, IPC and UTS namespaces held by a pause process) and its containers.
public struct PodSpec: Equatable, Sendable {
    /// `metadata.name`: a DNS-1123 subdomain.
    public var name: String
    /// `metadata.namespace`, `default` when absent.
    public var namespace: String
    /// `metadata.uid`, when the manifest gives one.
    public var uid: String?
    /// `metadata.labels`.
    public var labels: [String: String]
    /// `metadata.annotations`.
    public var annotations: [String: String]
    /// `spec.hostname`, defaulting to the pod name.
    public var hostname: String
    /// `spec.restartPolicy`, `Always` when absent (as in Kubernetes).
    public var restartPolicy: RestartPolicy
    /// `spec.terminationGracePeriodSeconds`, 30 when absent.
    public var terminationGracePeriodSeconds: Int64
    /// `spec.shareProcessNamespace`: one PID namespace for the whole pod instead of one per container.
    public var shareProcessNamespace: Bool
    /// `spec.volumes`.
    public var volumes: [Volume]
    /// `spec.containers`, in manifest order; never empty, names unique.
    public var containers: [ContainerSpec]
    /// `spec.securityContext`: defaults for the containers' users, groups and seccomp profile,
    /// and the supplementary groups. Empty when absent.
    public var securityContext: PodSecurityContext
    /// `spec.hostNetwork`: the pod uses the host's network (and UTS) namespace; no pause-owned one.
    public var hostNetwork: Bool = false
    /// `spec.hostPID`: every container runs in the host's PID namespace.
    public var hostPID: Bool = false
    /// `spec.hostIPC`: the pod uses the host's IPC namespace (and the host's /dev/shm).
    public var hostIPC: Bool = false
    /// Namespaced sysctls written in the pod's namespaces (`spec.securityContext.sysctls`, CRI sysctls).
    public var sysctls: [Sysctl] = []
    /// The pod's resolv.conf as the CRI's DnsConfig gives it: it replaces the host's file whole.
    /// Nil = ``dnsPolicy`` and ``podDNSConfig`` decide (see ``resolvConf(hostResolvConf:)``).
    public var dnsConfig: DNSConfig?
    /// `spec.dnsPolicy`, `ClusterFirst` when absent (as in Kubernetes); podshim has no cluster DNS,
    /// so the cluster policies fall back to `Default` (``DNSPolicy/effective``).
    public var dnsPolicy: DNSPolicy = .clusterFirst
    /// `spec.dnsConfig`: added to the host's resolv.conf, or all of it with dnsPolicy `None`.
    /// Nil when absent or empty.
    public var podDNSConfig: PodDNSConfig?

    public init(
        name: String, namespace: String = "default", uid: String? = nil,
        labels: [String: String] = [:], annotations: [String: String] = [:],
        hostname: String? = nil, restartPolicy: RestartPolicy = .always,
        terminationGracePeriodSeconds: Int64 = 30, shareProcessNamespace: Bool = false,
        volumes: [Volume] = [], containers: [ContainerSpec],
        securityContext: PodSecurityContext = PodSecurityContext()
    ) {
        self.name = name
        self.namespace = namespace
        self.uid = uid
        self.labels = labels
        self.annotations = annotations
        self.hostname = hostname ?? name
        self.restartPolicy = restartPolicy
        self.terminationGracePeriodSeconds = terminationGracePeriodSeconds
        self.shareProcessNamespace = shareProcessNamespace
        self.volumes = volumes
        self.containers = containers
        self.securityContext = securityContext
    }

    /// The PID namespace of `container`: its own, unless it says otherwise or the pod shares one.
    public func pidNamespace(of container: ContainerSpec) -> PIDNamespaceMode {
        if let mode = container.pidNamespace { return mode }
        if hostPID { return .host }
        return shareProcessNamespace ? .pod : .container
    }

    /// The volume named `name`, if the pod declares one.
    public func volume(named name: String) -> Volume? {
        volumes.first { $0.name == name }
    }
}

/// Where a container's PID namespace comes from (the CRI's NamespaceMode for pid).
public enum PIDNamespaceMode: Equatable, Sendable {
    /// A new one of its own (Kubernetes' default).
    case container
    /// The pod's, held by the pause process (`shareProcessNamespace`).
    case pod
    /// The host's (`hostPID`).
    case host
    /// Another container's (the CRI's TARGET, for debug containers): its name in the pod.
    case target(String)
}

/// One sysctl: a dotted name (`net.ipv4.ip_unprivileged_port_start`) and its value.
public struct Sysctl: Equatable, Sendable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }

    /// Which namespace the sysctl belongs to, or nil when it is not namespaced (node-wide: refused).
    public var namespace: SysctlNamespace? {
        if name.hasPrefix("net.") { return .network }
        if name.hasPrefix("fs.mqueue.") { return .ipc }
        if name == "kernel.sem" || name.hasPrefix("kernel.shm") || name.hasPrefix("kernel.msg") { return .ipc }
        return nil
    }

    /// The file under /proc/sys that holds it.
    public var procPath: String {
        "/proc/sys/" + name.replacingOccurrences(of: ".", with: "/")
    }
}

public enum SysctlNamespace: String, Equatable, Sendable {
    case network = "network"
    case ipc = "IPC"
}

/// A pod's resolv.conf: `nameserver` lines, a `search` line and an `options` line.
public struct DNSConfig: Equatable, Sendable {
    public var servers: [String]
    public var searches: [String]
    public var options: [String]

    public init(servers: [String] = [], searches: [String] = [], options: [String] = []) {
        self.servers = servers
        self.searches = searches
        self.options = options
    }

    /// The file's text, in the order the kubelet writes it.
    public var resolvConf: String {
        var text = "# Generated by podshim from the pod's DNS configuration.\n"
        if !searches.isEmpty { text += "search " + searches.joined(separator: " ") + "\n" }
        for server in servers { text += "nameserver \(server)\n" }
        if !options.isEmpty { text += "options " + options.joined(separator: " ") + "\n" }
        return text
    }
}

/// `spec.restartPolicy`.
public enum RestartPolicy: String, Equatable, Sendable, CaseIterable {
    case always = "Always"
    case onFailure = "OnFailure"
    case never = "Never"
}

/// One entry of `spec.volumes`.
public struct Volume: Equatable, Sendable {
    public var name: String
    public var source: VolumeSource

    public init(name: String, source: VolumeSource) {
        self.name = name
        self.source = source
    }
}

/// Where a volume's data comes from.
public enum VolumeSource: Equatable, Sendable {
    /// A directory created with the pod and removed with it.
    /// `medium: Memory` backs it with a tmpfs; `sizeLimit` is kept as written (a quantity).
    case emptyDir(medium: EmptyDirMedium, sizeLimit: String?)
    /// A path on the host, bind-mounted. `type` is Kubernetes' HostPathType (`""` = no check).
    case hostPath(path: String, type: HostPathType)
}

/// `emptyDir.medium`.
public enum EmptyDirMedium: String, Equatable, Sendable {
    case disk = ""
    case memory = "Memory"
}

/// `hostPath.type`, as in Kubernetes.
public enum HostPathType: String, Equatable, Sendable, CaseIterable {
    case unset = ""
    case directoryOrCreate = "DirectoryOrCreate"
    case directory = "Directory"
    case fileOrCreate = "FileOrCreate"
    case file = "File"
    case socket = "Socket"
    case charDevice = "CharDevice"
    case blockDevice = "BlockDevice"
}

/// One entry of `spec.containers`.
public struct ContainerSpec: Equatable, Sendable {
    /// A DNS-1123 label, unique in the pod.
    public var name: String
    /// An absolute root filesystem path, or a name in the image store.
    public var image: String
    /// `command`: replaces the image's entrypoint. Empty when absent.
    public var command: [String]
    /// `args`: replaces the image's cmd. Empty when absent.
    public var args: [String]
    /// `env`, in order (later entries win, as in Kubernetes).
    public var env: [EnvVar]
    /// `workingDir`, absolute; nil when absent.
    public var workingDir: String?
    /// `volumeMounts`.
    public var volumeMounts: [VolumeMount]
    /// `ports`.
    public var ports: [ContainerPort]
    /// `imagePullPolicy`: Always, IfNotPresent or Never (`podshim run` pulls accordingly).
    public var imagePullPolicy: String?
    /// `resources`: CPU and memory limits and requests. Empty when absent.
    public var resources: ResourceRequirements
    /// `securityContext`: privileges, capabilities, seccomp profile, user and group. Empty when
    /// absent; see `effectiveRunAsUser(pod:)` and its siblings for the values the pod's
    /// `spec.securityContext` supplies.
    public var securityContext: SecurityContext
    /// `lifecycle`: the preStop hook and the stop signal.
    public var lifecycle: Lifecycle
    /// `startupProbe`, `livenessProbe`, `readinessProbe`.
    public var probes: [ProbeKind: Probe] = [:]
    /// The container's PID namespace when it is not the pod's rule (the CRI's container
    /// namespace options); nil = ``PodSpec/pidNamespace(of:)`` decides.
    public var pidNamespace: PIDNamespaceMode?
    /// `stdin`: the container gets a stdin that stays open for attach sessions (else /dev/null).
    public var stdin = false
    /// `stdinOnce`: its stdin is closed after the first attach session that wrote to it ends.
    public var stdinOnce = false
    /// `tty`: its stdin, stdout and stderr are a new pseudo-terminal, its controlling terminal.
    public var tty = false

    public init(
        name: String, image: String, command: [String] = [], args: [String] = [],
        env: [EnvVar] = [], workingDir: String? = nil, volumeMounts: [VolumeMount] = [],
        ports: [ContainerPort] = [], imagePullPolicy: String? = nil,
        resources: ResourceRequirements = ResourceRequirements(),
        securityContext: SecurityContext = SecurityContext(),
        lifecycle: Lifecycle = Lifecycle()
    ) {
        self.lifecycle = lifecycle
        self.name = name
        self.image = image
        self.command = command
        self.args = args
        self.env = env
        self.workingDir = workingDir
        self.volumeMounts = volumeMounts
        self.ports = ports
        self.imagePullPolicy = imagePullPolicy
        self.resources = resources
        self.securityContext = securityContext
    }
}

/// A container's `resources`, as whole numbers: CPU in millicores (thousandths of a CPU, `500m`
/// or `0.5` is 500) and memory in bytes, each rounded up from the quantity written. Nil means
/// not set.
///
/// As in Kubernetes, a request that is not written defaults to the limit when there is one, and a
/// request is never greater than its limit (the parser checks both on the quantities as written).
/// A limit of zero (`cpu: 0`, `memory: 0`) is allowed and means no limit, as it does to the
/// kubelet and to OCI runtimes, so it is stored as nil; a request of zero stays zero.
/// `ephemeral-storage` is checked in the manifest but not kept.
public struct ResourceRequirements: Equatable, Sendable {
    /// `limits.cpu` in millicores (> 0); nil when absent or zero.
    public var cpuLimitMillis: Int64?
    /// `limits.memory` in bytes (> 0); nil when absent or zero.
    public var memoryLimitBytes: Int64?
    /// `requests.cpu` in millicores, defaulting to the CPU limit as written (so 0 after `cpu: 0`);
    /// nil when neither is given.
    public var cpuRequestMillis: Int64?
    /// `requests.memory` in bytes, defaulting to the memory limit as written; nil when neither is given.
    public var memoryRequestBytes: Int64?

    public init(
        cpuLimitMillis: Int64? = nil, memoryLimitBytes: Int64? = nil,
        cpuRequestMillis: Int64? = nil, memoryRequestBytes: Int64? = nil
    ) {
        self.cpuLimitMillis = cpuLimitMillis
        self.memoryLimitBytes = memoryLimitBytes
        self.cpuRequestMillis = cpuRequestMillis
        self.memoryRequestBytes = memoryRequestBytes
    }

    /// Whether no limit or request is set.
    public var isEmpty: Bool { self == ResourceRequirements() }
}

/// One entry of `env`.
public struct EnvVar: Equatable, Sendable {
    public var name: String
    public var value: String

    public init(name: String, value: String) {
        self.name = name
        self.value = value
    }
}

/// One entry of `volumeMounts`.
public struct VolumeMount: Equatable, Sendable {
    /// The name of a volume in `spec.volumes`.
    public var name: String
    /// Absolute path inside the container, without `..` components.
    public var mountPath: String
    public var readOnly: Bool
    /// A relative path inside the volume to mount instead of its root (no `..`, not absolute).
    public var subPath: String?
    /// `mountPropagation`: None (rprivate), HostToContainer (rslave), Bidirectional (rshared).
    public var propagation: MountPropagation
    /// `recursiveReadOnly: Enabled`: every submount read-only too (mount_setattr AT_RECURSIVE).
    public var recursiveReadOnly: Bool

    public init(name: String, mountPath: String, readOnly: Bool = false, subPath: String? = nil,
                propagation: MountPropagation = .none, recursiveReadOnly: Bool = false) {
        self.name = name
        self.mountPath = mountPath
        self.readOnly = readOnly
        self.subPath = subPath
        self.propagation = propagation
        self.recursiveReadOnly = recursiveReadOnly
    }
}

/// `volumeMounts[].mountPropagation`.
public enum MountPropagation: String, Equatable, Sendable, CaseIterable {
    /// rprivate: nothing propagates either way.
    case none = "None"
    /// rslave: mounts made on the host later appear in the container.
    case hostToContainer = "HostToContainer"
    /// rshared: both ways (privileged containers only).
    case bidirectional = "Bidirectional"
}

/// One entry of `ports`.
public struct ContainerPort: Equatable, Sendable {
    public var name: String?
    /// 1…65535.
    public var containerPort: Int
    /// `TCP` (default), `UDP` or `SCTP`.
    public var `protocol`: String
    /// Published on the node at this port (through the CNI portmap plugin); nil = not published.
    public var hostPort: Int?
    /// The node address the hostPort is published on; nil = every address.
    public var hostIP: String?

    public init(name: String? = nil, containerPort: Int, protocol: String = "TCP", hostPort: Int? = nil, hostIP: String? = nil) {
        self.name = name
        self.containerPort = containerPort
        self.protocol = `protocol`
        self.hostPort = hostPort
        self.hostIP = hostIP
    }
}
