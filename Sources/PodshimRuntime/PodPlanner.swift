import PodshimCgroups
import PodshimSpec

/// Everything that can be checked before a pod starts: images, commands, the pause binary.
public enum PodPlanner {
    /// Plans every container of `pod`, or names the first field that cannot run here.
    public static func plan(
        _ pod: PodSpec, layout: PodLayout, configuration: RuntimeConfiguration
    ) throws(ManifestError) -> [ProcessPlan] {
        let images = ImageStore(directory: configuration.imageDirectory)
        let planner = ContainerPlanner(pod: pod, layout: layout)
        var plans: [ProcessPlan] = []
        for (index, container) in pod.containers.enumerated() {
            let rootfs: String
            do {
                rootfs = try images.rootfs(for: container.image)
            } catch {
                throw ManifestError(path: "spec.containers[\(index)].image", message: error.description)
            }
            plans.append(try planner.plan(containerAt: index, imageRootfs: rootfs))
        }
        return plans
    }

    /// The cgroup limits of a container's `resources` (the kubelet's mapping: requests default to
    /// limits, which the manifest parser already applied).
    public static func cgroupResources(_ resources: ResourceRequirements) -> CgroupResources {
        CgroupResources(
            cpuLimitMillis: resources.cpuLimitMillis, cpuRequestMillis: resources.cpuRequestMillis,
            memoryLimitBytes: resources.memoryLimitBytes)
    }
}
