import Foundation
import Glibc
import GRPCCore
import PodshimCgroups
import PodshimCRI
import PodshimImages
import PodshimRuntime
import PodshimSpec
import PodshimSystem

/// Maps the CRI's sandbox and container configs onto podshim's pod model, so that `podshim serve`
/// and `podshim run` share one planner, one spawn path and one cgroup mapping. Pure except for
/// the `stat` of mount sources that tells a file bind from a directory bind.
enum CRITranslation {
    /// The pod a RunPodSandbox request describes: no containers yet (they arrive one by one).
    static func pod(_ config: Runtime_V1_PodSandboxConfig) throws(PodshimError) -> PodSpec {
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
        if !config.logDirectory.isEmpty {
            guard config.logDirectory.hasPrefix("/") else {
                throw CRIError.invalidArgument("config.log_directory", "must be an absolute path")
            }
            // `/var/log/pods/../../etc` would put logs (and directories) anywhere on the host.
            guard !config.logDirectory.split(separator: "/").contains(".."), !config.logDirectory.contains("\0") else {
                throw CRIError.invalidArgument("config.log_directory", "\"\(config.logDirectory)\" must not contain \"..\"")
            }
        }

        let linux = config.linux.securityContext
        let options = linux.hasNamespaceOptions ? linux.namespaceOptions : Self.defaultNamespaceOptions
        let optionsField = "config.linux.security_context.namespace_options"
        for (name, mode) in [("network", options.network), ("ipc", options.ipc)] {
            guard mode == .pod || mode == .node else {
                throw CRIError.invalidArgument("\(optionsField).\(name)", "\(mode) is not a pod-level mode (POD or NODE)")
            }
        }
        switch options.pid {
        case .pod, .container, .node: break
        case .target: throw CRIError.invalidArgument("\(optionsField).pid", "TARGET applies to containers, not to a sandbox")
        case .UNRECOGNIZED(let value): throw CRIError.invalidArgument("\(optionsField).pid", "unknown mode \(value)")
        }
        if options.hasUsernsOptions && options.usernsOptions.mode != .node {
            throw CRIError.failedPrecondition("\(optionsField).userns_options: user namespaces are not supported yet")
        }
        let hostNetwork = options.network == .node
        var security = PodSecurityContext()
        if linux.hasRunAsUser { security.runAsUser = linux.runAsUser.value }
        if linux.hasRunAsGroup {
            guard linux.hasRunAsUser else {
                throw CRIError.invalidArgument("config.linux.security_context.run_as_group",
                                               "may only be set together with run_as_user")
            }
            security.runAsGroup = linux.runAsGroup.value
        }
        security.supplementalGroups = linux.supplementalGroups
        for (index, group) in linux.supplementalGroups.enumerated() where group < 0 || group > Int64(UInt32.max) {
            throw CRIError.invalidArgument("config.linux.security_context.supplemental_groups[\(index)]", "\(group) is not a group id")
        }
        try checkAppArmor(linux.hasApparmor ? linux.apparmor : nil, legacy: "",
                          field: "config.linux.security_context")

        var spec = PodSpec(
            name: metadata.name, namespace: metadata.namespace, uid: metadata.uid,
            labels: config.labels, annotations: config.annotations, hostname: hostname,
            restartPolicy: .never, terminationGracePeriodSeconds: 30,
            shareProcessNamespace: options.pid == .pod,
            containers: [], securityContext: security)
        spec.hostNetwork = hostNetwork
        if hostNetwork { spec.hostname = Pod.hostHostname() } // the host's UTS namespace, and its name
        spec.hostIPC = options.ipc == .node
        spec.hostPID = options.pid == .node
        spec.sysctls = try sysctls(config.linux.sysctls, pod: spec)
        if config.hasDnsConfig {
            let dns = config.dnsConfig
            for (field, values) in [("servers", dns.servers), ("searches", dns.searches), ("options", dns.options)] {
                for (index, value) in values.enumerated()
                    where value.isEmpty || value.contains(where: { $0.isWhitespace || $0 == "\0" }) {
                    throw CRIError.invalidArgument("config.dns_config.\(field)[\(index)]", "\"\(value)\" must be one word")
                }
            }
            spec.dnsConfig = DNSConfig(servers: dns.servers, searches: dns.searches, options: dns.options)
        }
        return spec
    }

    /// The pod's sysctls: only namespaced ones, written in the pod's own namespaces. A name in
    /// slash form (`net/ipv4/ip_forward`) is turned into the dotted one, as the kubelet does.
    static func sysctls(_ values: [String: String], pod: PodSpec) throws(PodshimError) -> [Sysctl] {
        var result: [Sysctl] = []
        for (written, value) in values.sorted(by: { $0.key < $1.key }) {
            let field = "config.linux.sysctls[\"\(written)\"]"
            var name = written
            if name.contains("/") {
                name = String(name.map { $0 == "/" ? "." : $0 == "." ? "/" : $0 })
            }
            guard !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }),
                  !name.split(separator: ".", omittingEmptySubsequences: false).contains(where: { $0.isEmpty || $0 == ".." })
            else {
                throw CRIError.invalidArgument(field, "\"\(written)\" is not a sysctl name")
            }
            if value.contains("\0") || value.contains("\n") {
                throw CRIError.invalidArgument(field, "the value must be one line")
            }
            let sysctl = Sysctl(name: name, value: value)
            switch sysctl.namespace {
            case nil:
                throw CRIError.invalidArgument(field, "\(name) is not a namespaced sysctl: it would change the whole node "
                    + "(allowed: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)")
            case .network? where pod.hostNetwork:
                throw CRIError.invalidArgument(field, "\(name) would change the host's network namespace (host network pod)")
            case .ipc? where pod.hostIPC:
                throw CRIError.invalidArgument(field, "\(name) would change the host's IPC namespace (host IPC pod)")
            default:
                break
            }
            guard access(sysctl.procPath, F_OK) == 0 else {
                throw CRIError.invalidArgument(field, "this kernel has no sysctl \(name) (\(sysctl.procPath))")
            }
            result.append(sysctl)
        }
        return result
    }

    /// AppArmor: nothing, or Unconfined, is fine. podshim loads no AppArmor profile, so any other
    /// request is refused rather than silently ignored.
    static func checkAppArmor(_ profile: Runtime_V1_SecurityProfile?, legacy: String, field: String) throws(PodshimError) {
        let unconfined = (profile.map { $0.profileType == .unconfined } ?? true)
            && (legacy.isEmpty || legacy == "unconfined")
        if unconfined { return }
        // Only picks the wording of the refusal below: unreadable means no AppArmor.
        let enabled = (try? String(contentsOfFile: "/sys/module/apparmor/parameters/enabled", encoding: .utf8))?
            .hasPrefix("Y") == true
        let what = profile.map { "\($0.profileType)" + ($0.localhostRef.isEmpty ? "" : " \($0.localhostRef)") } ?? legacy
        throw CRIError.failedPrecondition("\(field).apparmor: profile \(what) requested, but "
            + (enabled ? "podshim does not apply AppArmor profiles" : "this kernel has no AppArmor"))
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
    ) throws(PodshimError) -> ContainerAddition {
        guard config.hasMetadata, !config.metadata.name.isEmpty else {
            throw CRIError.invalidArgument("config.metadata.name", "required")
        }
        guard config.hasImage, !config.image.image.isEmpty else {
            throw CRIError.invalidArgument("config.image.image", "required")
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
            let propagation: MountPropagation
            switch mount.propagation {
            case .propagationPrivate: propagation = .none
            case .propagationHostToContainer: propagation = .hostToContainer
            case .propagationBidirectional:
                guard config.linux.securityContext.privileged else {
                    throw CRIError.invalidArgument(field + ".propagation", "BIDIRECTIONAL needs a privileged container")
                }
                propagation = .bidirectional
            case .UNRECOGNIZED(let value):
                throw CRIError.invalidArgument(field + ".propagation", "unknown propagation \(value)")
            }
            if mount.recursiveReadOnly {
                guard mount.readonly else {
                    throw CRIError.invalidArgument(field + ".recursive_read_only", "needs readonly")
                }
                guard propagation == .none else {
                    throw CRIError.invalidArgument(field + ".recursive_read_only", "needs PRIVATE propagation")
                }
            }
            if !mount.uidMappings.isEmpty || !mount.gidMappings.isEmpty {
                throw CRIError.failedPrecondition("\(field).uid_mappings: idmapped mounts are not supported yet")
            }
            volumes.append(Volume(name: name, source: .hostPath(path: mount.hostPath, type: hostPathType(mount.hostPath))))
            mounts.append(VolumeMount(name: name, mountPath: mount.containerPath, readOnly: mount.readonly,
                                      propagation: propagation, recursiveReadOnly: mount.recursiveReadOnly))
        }

        let linux = config.linux
        var security = SecurityContext()
        let context = linux.securityContext
        let contextField = "config.linux.security_context"
        if context.privileged { security.privileged = true }
        if context.hasCapabilities {
            security.capabilities = CapabilityChanges(add: context.capabilities.addCapabilities,
                                                      drop: context.capabilities.dropCapabilities)
        }
        // The user: run_as_user, else run_as_username resolved in the image's /etc/passwd, else
        // the image's USER. A group needs one of the first two (the CRI's rule).
        var userName: String?
        if context.hasRunAsUser {
            guard context.runAsUser.value >= 0 && context.runAsUser.value <= Int64(UInt32.max) else {
                throw CRIError.invalidArgument("\(contextField).run_as_user", "\(context.runAsUser.value) is not a user id")
            }
            security.runAsUser = context.runAsUser.value
            userName = image.users.name(ofUser: context.runAsUser.value)
        } else if !context.runAsUsername.isEmpty {
            guard let entry = image.users.user(named: context.runAsUsername) else {
                throw CRIError.invalidArgument("\(contextField).run_as_username",
                                               "user \"\(context.runAsUsername)\" is not in the image's /etc/passwd")
            }
            security.runAsUser = entry.uid
            security.runAsGroup = entry.gid
            userName = context.runAsUsername
        } else if let user = image.user, !user.isEmpty {
            let parts = user.split(separator: ":", maxSplits: 1).map(String.init)
            if let uid = Int64(parts[0]) {
                security.runAsUser = uid
                userName = image.users.name(ofUser: uid)
            } else if let entry = image.users.user(named: parts[0]) {
                security.runAsUser = entry.uid
                security.runAsGroup = entry.gid
                userName = parts[0]
            } else {
                throw CRIError.invalidArgument("config.image", "the image's user \"\(parts[0])\" is not in its /etc/passwd")
            }
            if parts.count > 1 {
                if let gid = Int64(parts[1]) {
                    security.runAsGroup = gid
                } else if let gid = image.users.gid(ofGroup: parts[1]) {
                    security.runAsGroup = gid
                } else {
                    throw CRIError.invalidArgument("config.image", "the image's group \"\(parts[1])\" is not in its /etc/group")
                }
            }
        } else {
            userName = "root"
        }
        if context.hasRunAsGroup {
            guard context.hasRunAsUser || !context.runAsUsername.isEmpty else {
                throw CRIError.invalidArgument("\(contextField).run_as_group",
                                               "may only be set together with run_as_user or run_as_username")
            }
            guard context.runAsGroup.value >= 0 && context.runAsGroup.value <= Int64(UInt32.max) else {
                throw CRIError.invalidArgument("\(contextField).run_as_group", "\(context.runAsGroup.value) is not a group id")
            }
            security.runAsGroup = context.runAsGroup.value
        } else if context.hasRunAsUser && security.runAsGroup == nil, let uid = security.runAsUser {
            // As containerd: the primary group of the uid in the image's /etc/passwd, else 0.
            security.runAsGroup = image.users.user(withID: uid)?.gid
        }
        for (index, group) in context.supplementalGroups.enumerated() where group < 0 || group > Int64(UInt32.max) {
            throw CRIError.invalidArgument("\(contextField).supplemental_groups[\(index)]", "\(group) is not a group id")
        }
        // The primary group first, as containerd lists it (and ContainerStatus.user reports it).
        var groups: [Int64] = [security.runAsGroup ?? 0]
        for group in context.supplementalGroups where !groups.contains(group) { groups.append(group) }
        switch context.supplementalGroupsPolicy {
        case .merge:
            // Merge: also the groups the image's /etc/group lists the user in.
            if let userName {
                for gid in image.users.memberships(of: userName) where !groups.contains(gid) { groups.append(gid) }
            }
        case .strict:
            break
        case .UNRECOGNIZED(let value):
            throw CRIError.invalidArgument("\(contextField).supplemental_groups_policy", "unknown policy \(value)")
        }
        security.supplementalGroups = groups
        if context.readonlyRootfs { security.readOnlyRootFilesystem = true }
        if context.noNewPrivs { security.allowPrivilegeEscalation = false }
        security.seccompProfile = try seccomp(context)
        try checkAppArmor(context.hasApparmor ? context.apparmor : nil, legacy: context.apparmorProfile, field: contextField)
        // Used as sent: the kubelet sends the default lists, and empty ones for procMount Unmasked.
        for (field, paths) in [("masked_paths", context.maskedPaths), ("readonly_paths", context.readonlyPaths)] {
            for (index, path) in paths.enumerated() where !path.hasPrefix("/") || path.contains("\0") {
                throw CRIError.invalidArgument("\(contextField).\(field)[\(index)]", "\"\(path)\" must be an absolute path")
            }
        }
        security.maskedPaths = context.maskedPaths
        security.readOnlyPaths = context.readonlyPaths

        var lifecycle = Lifecycle()
        if config.stopSignal != .runtimeDefault {
            let name = "\(config.stopSignal)".uppercased()
            guard name.hasPrefix("SIG"), Signal(parsing: name) != nil else {
                throw CRIError.invalidArgument("config.stop_signal", "unknown signal \(config.stopSignal)")
            }
            lifecycle.stopSignal = name
        }
        var container = ContainerSpec(
            name: key, image: config.image.image, command: command, args: args, env: env,
            workingDir: config.workingDir.isEmpty ? image.workingDir : config.workingDir,
            volumeMounts: mounts, resources: try resources(linux.resources, field: "config.linux.resources"),
            securityContext: security, lifecycle: lifecycle)
        container.stdin = config.stdin
        container.stdinOnce = config.stdinOnce
        container.tty = config.tty
        if context.hasNamespaceOptions {
            let options = context.namespaceOptions
            switch options.pid {
            case .container: container.pidNamespace = .container
            case .pod: container.pidNamespace = .pod
            case .node: container.pidNamespace = .host
            case .target:
                guard !options.targetID.isEmpty else {
                    throw CRIError.invalidArgument("\(contextField).namespace_options.target_id", "required for pid TARGET")
                }
                container.pidNamespace = .target(options.targetID)
            case .UNRECOGNIZED(let value):
                throw CRIError.invalidArgument("\(contextField).namespace_options.pid", "unknown mode \(value)")
            }
        }
        return ContainerAddition(container: container, volumes: volumes)
    }

    /// The CRI names of the fields the planner can reject: the manifest's volume mounts of a CRI
    /// container are its `mounts`, its capabilities `add_capabilities`/`drop_capabilities`.
    static func containerFields(_ config: Runtime_V1_ContainerConfig) -> ContainerFields {
        let context = "config.linux.security_context"
        return ContainerFields(
            command: "config.command",
            volumeMountName: { "config.mounts[\($0)].host_path" },
            capability: { "\(context).capabilities.\($0 == .add ? "add_capabilities" : "drop_capabilities")[\($1)]" },
            runAsNonRoot: "\(context).run_as_user",
            seccompProfile: config.linux.securityContext.hasSeccomp ? "\(context).seccomp" : "\(context).seccomp_profile_path")
    }

    /// The seccomp profile: `seccomp` when set, else the legacy `seccomp_profile_path`, else
    /// Unconfined.
    static func seccomp(_ context: Runtime_V1_LinuxContainerSecurityContext) throws(PodshimError) -> SeccompProfileSpec? {
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
        // Nothing said: Unconfined, as containerd and CRI-O (the kubelet asks for RuntimeDefault
        // explicitly when it wants it).
        case "": return SeccompProfileSpec(type: .unconfined)
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
    static func resources(_ resources: Runtime_V1_LinuxContainerResources, field: String) throws(PodshimError) -> ResourceRequirements {
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

    /// The cgroup files' values for CRI resources, kept as the kubelet sent them (quota, period,
    /// shares, cpusets, memory and swap, hugepages, raw `unified` files). Zero means not set.
    static func cgroupResources(_ resources: Runtime_V1_LinuxContainerResources, field: String) throws(PodshimError) -> CgroupResources {
        let requirements = try Self.resources(resources, field: field)
        var result = CgroupResources(cpuLimitMillis: requirements.cpuLimitMillis, cpuRequestMillis: requirements.cpuRequestMillis,
                                     memoryLimitBytes: requirements.memoryLimitBytes)
        if resources.cpuPeriod != 0 {
            guard resources.cpuPeriod >= 1000 && resources.cpuPeriod <= 1_000_000 else {
                throw CRIError.invalidArgument(field + ".cpu_period", "\(resources.cpuPeriod) is outside 1000…1000000 µs")
            }
            result.cpuPeriodMicroseconds = resources.cpuPeriod
        }
        if resources.cpuQuota > 0 || resources.cpuQuota == -1 { result.cpuQuotaMicroseconds = resources.cpuQuota }
        if resources.cpuShares > 0 { result.cpuShares = UInt64(min(max(resources.cpuShares, 2), 262_144)) }
        if resources.memorySwapLimitInBytes != 0 {
            if resources.memorySwapLimitInBytes < -1 {
                throw CRIError.invalidArgument(field + ".memory_swap_limit_in_bytes", "\(resources.memorySwapLimitInBytes) is negative")
            }
            if resources.memorySwapLimitInBytes > 0 && resources.memoryLimitInBytes > 0
                && resources.memorySwapLimitInBytes < resources.memoryLimitInBytes {
                throw CRIError.invalidArgument(field + ".memory_swap_limit_in_bytes",
                                               "\(resources.memorySwapLimitInBytes) is less than memory_limit_in_bytes (it counts memory plus swap)")
            }
            result.memorySwapLimitBytes = resources.memorySwapLimitInBytes
        }
        for (name, value) in [("cpuset_cpus", resources.cpusetCpus), ("cpuset_mems", resources.cpusetMems)] where !value.isEmpty {
            guard value.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == "," || $0 == "-") }) else {
                throw CRIError.invalidArgument(field + "." + name, "\"\(value)\" is not a list of numbers and ranges (0-3,6)")
            }
        }
        if !resources.cpusetCpus.isEmpty { result.cpusetCPUs = resources.cpusetCpus }
        if !resources.cpusetMems.isEmpty { result.cpusetMems = resources.cpusetMems }
        for (index, limit) in resources.hugepageLimits.enumerated() {
            let size = limit.pageSize
            let digits = size.prefix { $0.isNumber }
            guard !digits.isEmpty, ["KB", "MB", "GB"].contains(String(size.dropFirst(digits.count))) else {
                throw CRIError.invalidArgument(field + ".hugepage_limits[\(index)].page_size", "\"\(size)\" is not a page size (2MB, 1GB)")
            }
            result.hugepageLimits[size] = limit.limit
        }
        for (key, value) in resources.unified {
            if key.isEmpty || key.contains("/") || key.hasPrefix(".") || !key.contains(".") {
                throw CRIError.invalidArgument(field + ".unified[\"\(key)\"]", "not a cgroup v2 file name")
            }
            if value.contains("\0") {
                throw CRIError.invalidArgument(field + ".unified[\"\(key)\"]", "the value contains NUL")
            }
        }
        result.unified = resources.unified
        if resources.oomScoreAdj < -1000 || resources.oomScoreAdj > 1000 {
            throw CRIError.invalidArgument(field + ".oom_score_adj", "\(resources.oomScoreAdj) is outside -1000…1000")
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
    /// The image's /etc/passwd and /etc/group.
    var users = ImageUsers()

    /// The image's `User` when it is a numeric uid (`1000` or `1000:1000`).
    var numericUser: Int64? {
        guard let user, let first = user.split(separator: ":").first else { return nil }
        return Int64(first)
    }
}

/// Users and groups as an image's /etc/passwd and /etc/group list them.
struct ImageUsers: Sendable, Equatable {
    struct User: Sendable, Equatable {
        var name: String
        var uid: Int64
        var gid: Int64
    }
    struct Group: Sendable, Equatable {
        var name: String
        var gid: Int64
        var members: [String]
    }
    var users: [User] = []
    var groups: [Group] = []

    init(users: [User] = [], groups: [Group] = []) {
        self.users = users
        self.groups = groups
    }

    /// Parses the two files' text (malformed lines are skipped, as libc does).
    init(passwd: String, group: String) {
        for line in passwd.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 4, let uid = Int64(fields[2]), let gid = Int64(fields[3]) else { continue }
            users.append(User(name: String(fields[0]), uid: uid, gid: gid))
        }
        for line in group.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count >= 4, let gid = Int64(fields[2]) else { continue }
            let members = fields[3].split(separator: ",").map(String.init)
            groups.append(Group(name: String(fields[0]), gid: gid, members: members))
        }
    }

    func user(named name: String) -> User? { users.first { $0.name == name } }
    func user(withID uid: Int64) -> User? { users.first { $0.uid == uid } }
    func name(ofUser uid: Int64) -> String? { user(withID: uid)?.name }
    func gid(ofGroup name: String) -> Int64? { groups.first { $0.name == name }?.gid }
    /// The groups that list `user` as a member.
    func memberships(of user: String) -> [Int64] { groups.filter { $0.members.contains(user) }.map(\.gid) }
}
