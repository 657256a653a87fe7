import Foundation
import Glibc
import GRPCCore
import PodshimCRI
import PodshimSpec
import PodshimSystem

/// Maps the CRI's sandbox and container configs onto podshim's pod model, so that `podshim serve`
/// and `podshim run` share one planner, one spawn path and one cgroup mapping. Pure except for
/// the `stat` of mount sources that tells a file bind from a directory bind.
enum CRITranslation {
    /// The pod a RunPodSandbox request describes: no containers yet (they arrive one by one).
    static func pod(_ config: Runtime_V1_PodSandboxConfig) throws(RPCError) -> PodSpec {
        guard config.hasMetadata else { throw CRIError.invalidArgument("config.metadata", "required") }
        let metadata = config.metadata
        if metadata.name.isEmpty { throw CRIError.invalidArgument("config.metadata.name", "required") }
        if metadata.uid.isEmpty { throw CRIError.invalidArgument("config.metadata.uid", "required") }
        if metadata.namespace.isEmpty { throw CRIError.invalidArgument("config.metadata.namespace", "required") }
        for (field, value) in [("name", metadata.name), ("uid", metadata.uid), ("namespace", metadata.namespace)]
            where value.utf8.count > 253 || value.contains("/") || value.contains("\0") || value.contains("\n") {
            throw CRIError.invalidArgument("config.metadata.\(field)", "must be at most 253 bytes without '/', newline or NUL")
        }
        let hostname = config.hostname.isEmpty ? String(metadata.name.prefix(63)) : config.hostname
        if hostname.utf8.count > 64 || !hostname.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }) {
            throw CRIError.invalidArgument("config.hostname", "\"\(hostname)\" is not a valid host name")
        }
        if !config.logDirectory.isEmpty && !config.logDirectory.hasPrefix("/") {
            throw CRIError.invalidArgument("config.log_directory", "must be an absolute path")
        }

        let linux = config.linux.securityContext
        let options = linux.hasNamespaceOptions ? linux.namespaceOptions : Self.defaultNamespaceOptions
        if options.network == .node {
            throw CRIError.invalidArgument("config.linux.security_context.namespace_options.network",
                                           "the host network (NODE) is not supported: every pod gets its own network namespace")
        }
        if options.ipc == .node {
            throw CRIError.invalidArgument("config.linux.security_context.namespace_options.ipc",
                                           "the host IPC namespace (NODE) is not supported")
        }
        if options.pid == .node || options.pid == .target {
            throw CRIError.invalidArgument("config.linux.security_context.namespace_options.pid",
                                           "the host or a target PID namespace is not supported (POD or CONTAINER)")
        }
        var security = PodSecurityContext()
        if linux.hasRunAsUser { security.runAsUser = linux.runAsUser.value }
        if linux.hasRunAsGroup { security.runAsGroup = linux.runAsGroup.value }
        security.supplementalGroups = linux.supplementalGroups
        for (index, group) in linux.supplementalGroups.enumerated() where group < 0 || group > Int64(UInt32.max) {
            throw CRIError.invalidArgument("config.linux.security_context.supplemental_groups[\(index)]", "\(group) is not a group id")
        }

        return PodSpec(
            name: metadata.name, namespace: metadata.namespace, uid: metadata.uid,
            labels: config.labels, annotations: config.annotations, hostname: hostname,
            restartPolicy: .never, terminationGracePeriodSeconds: 30,
            shareProcessNamespace: options.pid == .pod,
            containers: [], securityContext: security)
    }

    /// Kubernetes' defaults when a client sends no namespace options: a PID namespace per container.
    static let defaultNamespaceOptions: Runtime_V1_NamespaceOption = {
        var options = Runtime_V1_NamespaceOption()
        options.pid = .container
        return options
    }()

    /// What CreateContainer adds to a pod: the container, the host-path volumes of its mounts, its
    /// CRI resources.
    struct ContainerAddition {
        var container: ContainerSpec
        var volumes: [Volume]
    }

    /// The container a CreateContainer request describes. `key` is its layout name (its id);
    /// `imageConfig` fills the command, environment and working directory the config leaves empty.
    static func container(
        _ config: Runtime_V1_ContainerConfig, key: String, image: ImageDefaults
    ) throws(RPCError) -> ContainerAddition {
        guard config.hasMetadata, !config.metadata.name.isEmpty else {
            throw CRIError.invalidArgument("config.metadata.name", "required")
        }
        guard config.hasImage, !config.image.image.isEmpty else {
            throw CRIError.invalidArgument("config.image.image", "required")
        }
        if config.tty || config.stdin {
            throw CRIError.invalidArgument(config.tty ? "config.tty" : "config.stdin",
                                           "interactive containers (attach) are not supported")
        }
        // As the OCI image spec and Docker: the config's command replaces the image's entrypoint
        // and cmd; its args replace only the cmd.
        let command: [String]
        let args: [String]
        if !config.command.isEmpty {
            command = config.command
            args = config.args
        } else {
            command = image.entrypoint
            args = config.args.isEmpty ? image.cmd : config.args
        }
        if (command + args).isEmpty {
            throw CRIError.invalidArgument("config.command", "required: image \(config.image.image) has no entrypoint or cmd")
        }
        var env: [EnvVar] = image.env.map { entry in
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            return EnvVar(name: String(parts[0]), value: parts.count > 1 ? String(parts[1]) : "")
        }
        for (index, variable) in config.envs.enumerated() {
            if variable.key.isEmpty || variable.key.contains("=") || variable.key.contains("\0") || variable.value.contains("\0") {
                throw CRIError.invalidArgument("config.envs[\(index)].key", "\"\(variable.key)\" is not an environment variable name")
            }
            env.append(EnvVar(name: variable.key, value: variable.value))
        }
        if !config.workingDir.isEmpty && !config.workingDir.hasPrefix("/") {
            throw CRIError.invalidArgument("config.working_dir", "must be an absolute path")
        }

        var volumes: [Volume] = []
        var mounts: [VolumeMount] = []
        for (index, mount) in config.mounts.enumerated() {
            let field = "config.mounts[\(index)]"
            guard mount.containerPath.hasPrefix("/") else {
                throw CRIError.invalidArgument(field + ".container_path", "must be an absolute path")
            }
            guard mount.hostPath.hasPrefix("/") else {
                throw CRIError.invalidArgument(field + ".host_path", "must be an absolute path")
            }
            if mount.hasImage {
                throw CRIError.invalidArgument(field + ".image", "image volumes are not supported")
            }
            let name = "cri-\(key.prefix(12))-\(index)"
            volumes.append(Volume(name: name, source: .hostPath(path: mount.hostPath, type: hostPathType(mount.hostPath))))
            mounts.append(VolumeMount(name: name, mountPath: mount.containerPath, readOnly: mount.readonly))
        }

        let linux = config.linux
        var security = SecurityContext()
        let context = linux.securityContext
        if context.privileged { security.privileged = true }
        if context.hasCapabilities {
            security.capabilities = CapabilityChanges(add: context.capabilities.addCapabilities,
                                                      drop: context.capabilities.dropCapabilities)
        }
        if context.hasRunAsUser {
            guard context.runAsUser.value >= 0 && context.runAsUser.value <= Int64(UInt32.max) else {
                throw CRIError.invalidArgument("config.linux.security_context.run_as_user", "\(context.runAsUser.value) is not a user id")
            }
            security.runAsUser = context.runAsUser.value
        } else if let user = image.numericUser {
            security.runAsUser = user
        }
        if !context.runAsUsername.isEmpty {
            throw CRIError.invalidArgument("config.linux.security_context.run_as_username",
                                           "user names are not resolved: give run_as_user")
        }
        if context.hasRunAsGroup {
            guard context.runAsGroup.value >= 0 && context.runAsGroup.value <= Int64(UInt32.max) else {
                throw CRIError.invalidArgument("config.linux.security_context.run_as_group", "\(context.runAsGroup.value) is not a group id")
            }
            security.runAsGroup = context.runAsGroup.value
        }
        if context.readonlyRootfs { security.readOnlyRootFilesystem = true }
        if context.noNewPrivs { security.allowPrivilegeEscalation = false }
        security.seccompProfile = try seccomp(context)

        var lifecycle = Lifecycle()
        if config.stopSignal != .runtimeDefault {
            let name = "\(config.stopSignal)".uppercased()
            guard name.hasPrefix("SIG"), Signal(parsing: name) != nil else {
                throw CRIError.invalidArgument("config.stop_signal", "unknown signal \(config.stopSignal)")
            }
            lifecycle.stopSignal = name
        }
        return ContainerAddition(
            container: ContainerSpec(
                name: key, image: config.image.image, command: command, args: args, env: env,
                workingDir: config.workingDir.isEmpty ? image.workingDir : config.workingDir,
                volumeMounts: mounts, resources: try resources(linux.resources, field: "config.linux.resources"),
                securityContext: security, lifecycle: lifecycle),
            volumes: volumes)
    }

    /// The seccomp profile: `seccomp` when set, else the legacy `seccomp_profile_path`, else
    /// RuntimeDefault (podshim confines by default, as the kubelet's `--seccomp-default`).
    static func seccomp(_ context: Runtime_V1_LinuxContainerSecurityContext) throws(RPCError) -> SeccompProfileSpec? {
        if context.hasSeccomp {
            switch context.seccomp.profileType {
            case .runtimeDefault: return SeccompProfileSpec(type: .runtimeDefault)
            case .unconfined: return SeccompProfileSpec(type: .unconfined)
            case .localhost:
                guard !context.seccomp.localhostRef.isEmpty else {
                    throw CRIError.invalidArgument("config.linux.security_context.seccomp.localhost_ref", "required for Localhost")
                }
                return SeccompProfileSpec(type: .localhost, localhostProfile: context.seccomp.localhostRef)
            case .UNRECOGNIZED(let value):
                throw CRIError.invalidArgument("config.linux.security_context.seccomp.profile_type", "unknown value \(value)")
            }
        }
        switch context.seccompProfilePath {
        case "": return nil
        case "unconfined": return SeccompProfileSpec(type: .unconfined)
        case "runtime/default", "docker/default": return SeccompProfileSpec(type: .runtimeDefault)
        case let path where path.hasPrefix("localhost/"):
            return SeccompProfileSpec(type: .localhost, localhostProfile: String(path.dropFirst("localhost/".count)))
        case let path:
            throw CRIError.invalidArgument("config.linux.security_context.seccomp_profile_path", "\"\(path)\" is not a profile")
        }
    }

    /// The kubelet's CPU and memory values turned back into Kubernetes quantities: quota/period
    /// is the limit in millicores, shares the request (the kubelet sends 2 for none).
    static func resources(_ resources: Runtime_V1_LinuxContainerResources, field: String) throws(RPCError) -> ResourceRequirements {
        var result = ResourceRequirements()
        if resources.cpuQuota > 0 {
            let period = resources.cpuPeriod > 0 ? resources.cpuPeriod : 100_000
            guard period >= 1000 && period <= 1_000_000 else {
                throw CRIError.invalidArgument(field + ".cpu_period", "\(period) is outside 1000…1000000 µs")
            }
            let (product, overflow) = resources.cpuQuota.multipliedReportingOverflow(by: 1000)
            result.cpuLimitMillis = max(1, overflow ? Int64.max / period : product / period)
        } else if resources.cpuQuota < -1 {
            throw CRIError.invalidArgument(field + ".cpu_quota", "\(resources.cpuQuota) is negative")
        }
        if resources.cpuShares > 2 {
            let shares = min(resources.cpuShares, 262_144)
            result.cpuRequestMillis = (shares * 1000 + 1023) / 1024
        } else if resources.cpuShares < 0 {
            throw CRIError.invalidArgument(field + ".cpu_shares", "\(resources.cpuShares) is negative")
        }
        if resources.memoryLimitInBytes > 0 {
            result.memoryLimitBytes = resources.memoryLimitInBytes
            result.memoryRequestBytes = resources.memoryLimitInBytes
        } else if resources.memoryLimitInBytes < 0 {
            throw CRIError.invalidArgument(field + ".memory_limit_in_bytes", "\(resources.memoryLimitInBytes) is negative")
        }
        return result
    }

    /// A bind mount's host path decides what the target is created as; a missing one is created as
    /// a directory, as containerd does.
    static func hostPathType(_ path: String) -> HostPathType {
        var info = stat()
        guard stat(path, &info) == 0 else { return .directoryOrCreate }
        switch info.st_mode & S_IFMT {
        case S_IFDIR: return .directory
        case S_IFREG: return .file
        case S_IFSOCK: return .socket
        case S_IFCHR: return .charDevice
        case S_IFBLK: return .blockDevice
        default: return .unset
        }
    }
}

/// What an image contributes to a container whose config leaves it out.
struct ImageDefaults: Sendable {
    var entrypoint: [String] = []
    var cmd: [String] = []
    var env: [String] = []
    var workingDir: String?
    var user: String?

    /// The image's `User` when it is a numeric uid (`1000` or `1000:1000`); names are not resolved.
    var numericUser: Int64? {
        guard let user, let first = user.split(separator: ":").first else { return nil }
        return Int64(first)
    }
}
