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

    /// The volume named `name`, if the pod declares one.
    public func volume(named name: String) -> Volume? {
        volumes.first { $0.name == name }
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
    /// `imagePullPolicy`, accepted for compatibility; images are local.
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

    public init(name: String, mountPath: String, readOnly: Bool = false, subPath: String? = nil) {
        self.name = name
        self.mountPath = mountPath
        self.readOnly = readOnly
        self.subPath = subPath
    }
}

/// One entry of `ports`.
public struct ContainerPort: Equatable, Sendable {
    public var name: String?
    /// 1…65535.
    public var containerPort: Int
    /// `TCP` (default), `UDP` or `SCTP`.
    public var `protocol`: String

    public init(name: String? = nil, containerPort: Int, protocol: String = "TCP") {
        self.name = name
        self.containerPort = containerPort
        self.protocol = `protocol`
    }
}
