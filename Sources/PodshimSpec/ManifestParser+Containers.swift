/// Parsing `spec.containers`.
extension ManifestParser {
    private static let containerFields: Set<String> = [
        "name", "image", "command", "args", "env", "workingDir", "volumeMounts", "ports", "imagePullPolicy",
    ]
    private static let envFields: Set<String> = ["name", "value"]
    private static let volumeMountFields: Set<String> = ["name", "mountPath", "readOnly", "subPath"]
    private static let portFields: Set<String> = ["name", "containerPort", "protocol"]
    private static let imagePullPolicies = ["Always", "IfNotPresent", "Never"]
    private static let protocols = ["TCP", "UDP", "SCTP"]

    /// `spec.containers`: required, not empty, names unique; mounts refer to `volumes`.
    static func parseContainers(in spec: ManifestMapping, volumes: [Volume]) throws(ManifestError) -> [ContainerSpec] {
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
            containers.append(try parseContainer(item, name: name, volumes: volumes))
        }
        return containers
    }

    /// One container, its name already checked.
    private static func parseContainer(
        _ container: ManifestMapping, name: String, volumes: [Volume]
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
        return ContainerSpec(
            name: name, image: image, command: command, args: args, env: env, workingDir: workingDir,
            volumeMounts: volumeMounts, ports: ports, imagePullPolicy: imagePullPolicy
        )
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
            mounts.append(VolumeMount(name: name, mountPath: mountPath, readOnly: readOnly, subPath: subPath))
        }
        return mounts
    }

    /// `ports: [{ name, containerPort, protocol }]`; port names are IANA service names, unique
    /// in the container.
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
            ports.append(ContainerPort(name: name, containerPort: port, protocol: proto))
        }
        return ports
    }
}
