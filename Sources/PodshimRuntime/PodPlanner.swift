import PodshimCgroups
import PodshimImages
import PodshimSecurity
import PodshimSpec
import PodshimProcess

/// Everything that can be checked before a pod starts: images, commands, the pause binary.
public enum PodPlanner {
    /// Plans every container of `pod`, or names the first field that cannot run here.
    public static func plan(
        _ pod: PodSpec, layout: PodLayout, configuration: RuntimeConfiguration
    ) throws(ManifestError) -> [ProcessPlan] {
        let images = ImageStore(directory: configuration.imageDirectory)
        var pod = pod
        if pod.hostNetwork { pod.hostname = Pod.hostHostname() } // its HOSTNAME is the host's name
        var rootfsByContainer: [String] = []
        for index in pod.containers.indices {
            do {
                let image = try images.resolve(pod.containers[index].image)
                rootfsByContainer.append(image.rootfs)
                if let record = image.record { applyImageDefaults(record.config, to: &pod.containers[index]) }
            } catch {
                throw ManifestError(path: "spec.containers[\(index)].image", message: error.description)
            }
        }
        let planner = ContainerPlanner(pod: pod, layout: layout)
        var plans: [ProcessPlan] = []
        var filters: [String: [UInt8]] = [:]  // containers with the same profile and capabilities share one
        for index in pod.containers.indices {
            var plan = try planner.plan(containerAt: index, imageRootfs: rootfsByContainer[index])
            let capabilities = CapabilitySet(rawValue: plan.capabilities?.bounding ?? Capabilities.all.rawValue)
            let choice = planner.seccompChoice(containerAt: index)
            let key = "\(choice)/\(capabilities.rawValue)"
            if let cached = filters[key] {
                plan.seccompFilter = cached
            } else {
                plan.seccompFilter = try seccompFilter(choice, capabilities: capabilities, configuration: configuration,
                                                       field: ContainerFields.manifest(containerAt: index).seccompProfile)
                filters[key] = plan.seccompFilter
            }
            plans.append(plan)
        }
        return plans
    }

    /// Kubernetes' defaulting from the image config: no `command` runs the image's entrypoint, with
    /// the image's cmd when there are no `args` either; `args` alone replace the cmd. The image's
    /// environment comes first (the container's variables override it) and its working directory
    /// applies when the container sets none.
    static func applyImageDefaults(_ image: ImageConfig, to container: inout ContainerSpec) {
        if container.command.isEmpty {
            container.command = image.entrypoint
            if container.args.isEmpty { container.args = image.cmd }
        }
        let own = Set(container.env.map(\.name))
        let inherited = image.env.compactMap { entry -> EnvVar? in
            guard let equals = entry.firstIndex(of: "=") else { return nil }
            let name = String(entry[..<equals])
            return own.contains(name) ? nil : EnvVar(name: name, value: String(entry[entry.index(after: equals)...]))
        }
        container.env = inherited + container.env
        if container.workingDir == nil, let directory = image.workingDir, !directory.isEmpty { container.workingDir = directory }
    }

    /// Compiles the container's profile to BPF now, so that a missing or malformed profile is an
    /// error naming the field before anything starts.
    public static func seccompFilter(
        _ choice: SeccompChoice, capabilities: CapabilitySet, configuration: RuntimeConfiguration, field: String
    ) throws(ManifestError) -> [UInt8]? {
        do {
            switch choice {
            case .unconfined:
                return nil
            case .runtimeDefault:
                return try Seccomp.runtimeDefault(capabilities: capabilities).bpf
            case .localhost(let path):
                let file = path.hasPrefix("/") ? path : configuration.rootDirectory + "/seccomp/" + path
                return try Seccomp.localhost(profileAt: file, capabilities: capabilities).bpf
            }
        } catch {
            throw ManifestError(path: field, message: String(describing: error))
        }
    }

    /// The cgroup limits of a container's `resources` (the kubelet's mapping: requests default to
    /// limits, which the manifest parser already applied).
    public static func cgroupResources(_ resources: ResourceRequirements) -> CgroupResources {
        CgroupResources(
            cpuLimitMillis: resources.cpuLimitMillis, cpuRequestMillis: resources.cpuRequestMillis,
            memoryLimitBytes: resources.memoryLimitBytes)
    }
}
