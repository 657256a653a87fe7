/// Parsing `spec.containers`.
extension ManifestParser {
    private static let containerFields: Set<String> = [
        "name", "image", "command", "args", "env", "workingDir", "volumeMounts", "ports", "imagePullPolicy",
        "resources", "securityContext", "lifecycle", "livenessProbe", "readinessProbe", "startupProbe",
        "stdin", "stdinOnce", "tty",
    ]
    private static let envFields: Set<String> = ["name", "value"]
    private static let volumeMountFields: Set<String> = ["name", "mountPath", "readOnly", "subPath", "mountPropagation"]
    private static let portFields: Set<String> = ["name", "containerPort", "protocol", "hostPort", "hostIP"]
    private static let imagePullPolicies = ["Always", "IfNotPresent", "Never"]
    private static let protocols = ["TCP", "UDP", "SCTP"]
    private static let resourcesFields: Set<String> = ["limits", "requests"]
    private static let resourceNames: Set<String> = ["cpu", "memory", "ephemeral-storage"]
    private static let unsupportedResource = "unsupported resource (cpu, memory, ephemeral-storage)"

    /// `spec.containers`: required, not empty, names unique; mounts refer to `volumes`, and each
    /// security context is checked together with the pod's.
    static func parseContainers(
        in spec: ManifestMapping, volumes: [Volume], podSecurityContext: PodSecurityContext
    ) throws(ManifestError) -> [ContainerSpec] {
        let list = try spec.requiredField("containers")
        let items = try list.mappingList(accepting: containerFields)
        guard !items.isEmpty else { throw list.error("must not be empty") }
        var containers: [ContainerSpec] = []
        for item in items {
            let name = try item.requiredString("name")
            guard NameRules.isDNS1123Label(name) else {
                throw ManifestError(path: item.path(of: "name"), message: NameRules.labelRule)
            }
            guard !containers.contains(where: { $0.name == name }) else {
                throw ManifestError(path: item.path(of: "name"), message: "duplicate container name \"\(name)\"")
            }
            containers.append(
                try parseContainer(item, name: name, volumes: volumes, podSecurityContext: podSecurityContext)
            )
        }
        return containers
    }

    /// One container, its name already checked.
    private static func parseContainer(
        _ container: ManifestMapping, name: String, volumes: [Volume], podSecurityContext: PodSecurityContext
    ) throws(ManifestError) -> ContainerSpec {
        let image = try container.requiredString("image")
        let command = try container.stringList("command")
        let args = try container.stringList("args")
        let env = try parseEnv(container)
        let workingDir = try container.string("workingDir")
        if let workingDir, !PathRules.isAbsolute(workingDir) {
            throw ManifestError(path: container.path(of: "workingDir"), message: "must be an absolute path")
        }
        let volumeMounts = try parseVolumeMounts(container, volumes: volumes)
        let ports = try parsePorts(container)
        let imagePullPolicy = try container.oneOf("imagePullPolicy", imagePullPolicies)
        let resources = try parseResources(container)
        let securityContext = try parseSecurityContext(container, pod: podSecurityContext)
        let lifecycle = try parseLifecycle(container, ports: ports)
        var spec = ContainerSpec(
            name: name, image: image, command: command, args: args, env: env, workingDir: workingDir,
            volumeMounts: volumeMounts, ports: ports, imagePullPolicy: imagePullPolicy,
            resources: resources, securityContext: securityContext, lifecycle: lifecycle
        )
        spec.probes = try parseProbes(container, ports: ports)
        spec.stdin = try container.bool("stdin") ?? false
        spec.stdinOnce = try container.bool("stdinOnce") ?? false
        spec.tty = try container.bool("tty") ?? false
        return spec
    }

    /// `env: [{ name, value }]`; names are non-empty and hold no `=`; values default to "".
    private static func parseEnv(_ container: ManifestMapping) throws(ManifestError) -> [EnvVar] {
        var env: [EnvVar] = []
        for item in try container.mappingList("env", accepting: envFields) {
            let name = try item.requiredString("name")
            guard !name.contains("=") else {
                throw ManifestError(path: item.path(of: "name"), message: "must not contain '='")
            }
            env.append(EnvVar(name: name, value: try item.string("value") ?? ""))
        }
        return env
    }

    /// `volumeMounts: [{ name, mountPath, readOnly, subPath }]`; each names a declared volume,
    /// and no two mount at the same path.
    private static func parseVolumeMounts(
        _ container: ManifestMapping, volumes: [Volume]
    ) throws(ManifestError) -> [VolumeMount] {
        var mounts: [VolumeMount] = []
        for item in try container.mappingList("volumeMounts", accepting: volumeMountFields) {
            let name = try item.requiredString("name")
            guard volumes.contains(where: { $0.name == name }) else {
                throw ManifestError(path: item.path(of: "name"), message: "no volume named \"\(name)\" in spec.volumes")
            }

            let mountPath = try item.requiredString("mountPath")
            guard PathRules.isAbsolute(mountPath) else {
                throw ManifestError(path: item.path(of: "mountPath"), message: "must be an absolute path")
            }
            guard !PathRules.hasParentComponent(mountPath) else {
                throw ManifestError(path: item.path(of: "mountPath"), message: "must not contain '..'")
            }
            let normalized = PathRules.normalized(mountPath)
            guard !mounts.contains(where: { PathRules.normalized($0.mountPath) == normalized }) else {
                throw ManifestError(path: item.path(of: "mountPath"), message: "duplicate mount path \"\(mountPath)\"")
            }

            let readOnly = try item.bool("readOnly") ?? false

            let subPath = try item.string("subPath")
            if let subPath {
                guard !PathRules.isAbsolute(subPath) else {
                    throw ManifestError(path: item.path(of: "subPath"), message: "must be a relative path")
                }
                guard !PathRules.hasParentComponent(subPath) else {
                    throw ManifestError(path: item.path(of: "subPath"), message: "must not contain '..'")
                }
            }
            let propagation = try item.oneOf("mountPropagation", MountPropagation.allCases.map(\.rawValue))
                .flatMap(MountPropagation.init(rawValue:)) ?? MountPropagation.none
            mounts.append(VolumeMount(name: name, mountPath: mountPath, readOnly: readOnly, subPath: subPath,
                                      propagation: propagation))
        }
        return mounts
    }

    /// `ports: [{ name, containerPort, protocol, hostPort, hostIP }]`; port names are IANA service
    /// names, unique in the container; a hostPort is published on the node (CNI portmap).
    private static func parsePorts(_ container: ManifestMapping) throws(ManifestError) -> [ContainerPort] {
        var ports: [ContainerPort] = []
        for item in try container.mappingList("ports", accepting: portFields) {
            let name = try item.string("name")
            if let name {
                guard NameRules.isIANAServiceName(name) else {
                    throw ManifestError(path: item.path(of: "name"), message: NameRules.serviceNameRule)
                }
                guard !ports.contains(where: { $0.name == name }) else {
                    throw ManifestError(path: item.path(of: "name"), message: "duplicate port name \"\(name)\"")
                }
            }
            let port = try item.requiredField("containerPort").int()
            guard (1...65535).contains(port) else {
                throw ManifestError(path: item.path(of: "containerPort"), message: "must be between 1 and 65535")
            }
            let proto = try item.oneOf("protocol", protocols) ?? "TCP"
            var entry = ContainerPort(name: name, containerPort: port, protocol: proto)
            if let hostPort = try item.int("hostPort") {
                guard (1...65535).contains(hostPort) else {
                    throw ManifestError(path: item.path(of: "hostPort"), message: "must be between 1 and 65535")
                }
                entry.hostPort = hostPort
            }
            if let hostIP = try item.string("hostIP") {
                guard entry.hostPort != nil else {
                    throw ManifestError(path: item.path(of: "hostIP"), message: "needs a hostPort")
                }
                guard IPAddressRules.isIPAddress(hostIP) else {
                    throw ManifestError(path: item.path(of: "hostIP"), message: "\"\(hostIP)\" is not an IP address")
                }
                entry.hostIP = hostIP
            }
            ports.append(entry)
        }
        return ports
    }

    /// One of `resources.limits` and `resources.requests`: its quantities, checked and converted.
    private struct ResourceList {
        /// The path of the list, such as `spec.containers[0].resources.limits`.
        var path: String
        var cpu: Quantity?
        var cpuMillis: Int64?
        var memory: Quantity?
        var memoryBytes: Int64?
    }

    /// `resources: { limits: {cpu, memory, ephemeral-storage}, requests: {…} }`, with Kubernetes'
    /// defaulting (a request not written is the limit) and its rule that no request exceeds its
    /// limit. See ``ResourceRequirements`` for what is stored.
    private static func parseResources(_ container: ManifestMapping) throws(ManifestError) -> ResourceRequirements {
        guard let resources = try container.mapping("resources", accepting: resourcesFields) else {
            return ResourceRequirements()
        }
        let limits = try parseResourceList(resources, "limits")
        let requests = try parseResourceList(resources, "requests")

        // Compared exactly, as written: rounding to millicores or bytes could hide an excess.
        for (name, request, limit) in [("cpu", requests.cpu, limits.cpu), ("memory", requests.memory, limits.memory)] {
            if let request, let limit, request.compare(limit) > 0 {
                throw ManifestError(
                    path: ManifestNode.path(requests.path, name),
                    message: "must be less than or equal to the \(name) limit"
                )
            }
        }

        return ResourceRequirements(
            cpuLimitMillis: limits.cpuMillis == 0 ? nil : limits.cpuMillis,
            memoryLimitBytes: limits.memoryBytes == 0 ? nil : limits.memoryBytes,
            cpuRequestMillis: requests.cpuMillis ?? limits.cpuMillis,
            memoryRequestBytes: requests.memoryBytes ?? limits.memoryBytes
        )
    }

    /// `resources.<key>`: a mapping of resource names to non-negative quantities that fit in an
    /// `Int64` once converted (CPU to millicores, the others to bytes).
    private static func parseResourceList(
        _ resources: ManifestMapping, _ key: String
    ) throws(ManifestError) -> ResourceList {
        let list = try resources.mapping(key, accepting: resourceNames, unknownKey: unsupportedResource)
            ?? .empty(at: resources.path(of: key))
        var result = ResourceList(path: list.path)
        if let node = list.field("cpu") {
            let quantity = try QuantityRules.nonNegative(node)
            result.cpu = quantity
            result.cpuMillis = try QuantityRules.millis(quantity, at: node.path)
        }
        if let node = list.field("memory") {
            let quantity = try QuantityRules.nonNegative(node)
            result.memory = quantity
            result.memoryBytes = try QuantityRules.bytes(quantity, at: node.path)
        }
        if let node = list.field("ephemeral-storage") {
            _ = try QuantityRules.bytes(try QuantityRules.nonNegative(node), at: node.path)
        }
        return result
    }
}
