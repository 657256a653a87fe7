import Foundation
import Glibc
import PodshimSystem

/// A pod's cgroups: `<root>/podshim/pod-<id>/` carrying the pod's limits, with a leaf `pause` for
/// the sandbox and a leaf `container-<name>` per container (processes live only in leaves: the
/// "no internal processes" rule).
public struct PodCgroups: Sendable {
    public let pod: Cgroup
    /// Controllers enabled for the pod's leaves; empty on a host that cannot enforce limits.
    public let controllers: Set<String>

    /// The cgroups of a pod that already exist (re-adopted after a restart).
    public init(pod: Cgroup, controllers: Set<String>) {
        self.pod = pod
        self.controllers = controllers
    }

    public var sandbox: Cgroup { pod.child("pause") }

    /// Creates the leaf of a container added to a running pod and writes its limit files.
    public func addContainer(_ name: String, resources: CgroupResources) throws(SystemError) -> Cgroup {
        let leaf = container(name)
        try leaf.create()
        try Self.apply(CgroupFiles.files(for: resources), to: leaf)
        return leaf
    }
    public func container(_ name: String) -> Cgroup { pod.child("container-" + name) }

    /// The pod cgroup path for `podID` under `root` (the directory holding `podshim/`).
    public static func path(root: String, podID: String) -> String { root + "/podshim/pod-" + podID }

    /// Creates the pod's cgroups, enabling controllers on the way down from the hierarchy's mount
    /// point, and writes the pod's and each container's limit files.
    public static func create(
        hierarchy: CgroupHierarchy, root: String, podID: String,
        containers: [(name: String, resources: CgroupResources)], podPidsLimit: Int64?
    ) throws(SystemError) -> PodCgroups {
        let wanted = CgroupHierarchy.limitControllers
        let podshim = Cgroup(path: root + "/podshim")
        let pod = Cgroup(path: path(root: root, podID: podID))
        for ancestor in ancestors(from: hierarchy.mountPoint, to: root) {
            try ancestor.enableControllers(wanted)
        }
        try podshim.create()
        try podshim.enableControllers(wanted)
        try pod.create()
        let controllers = try pod.enableControllers(wanted)
        let cgroups = PodCgroups(pod: pod, controllers: controllers)

        let podResources = CgroupResources.pod(containers: containers.map(\.resources), pidsLimit: podPidsLimit)
        try apply(CgroupFiles.files(for: podResources, oomGroup: false), to: pod)
        try cgroups.sandbox.create()
        for (name, resources) in containers {
            let leaf = cgroups.container(name)
            try leaf.create()
            try apply(CgroupFiles.files(for: resources), to: leaf)
        }
        return cgroups
    }

    /// Rewrites a container's limit files (the CRI's UpdateContainerResources).
    public static func update(_ leaf: Cgroup, resources: CgroupResources) throws(SystemError) {
        try apply(CgroupFiles.files(for: resources), to: leaf)
    }

    /// Writes `files` into `cgroup`, skipping files of controllers not enabled for it and files
    /// this kernel does not have (memory.swap.max without swap accounting, …).
    static func apply(_ files: [(name: String, value: String)], to cgroup: Cgroup) throws(SystemError) {
        let enabled = cgroup.availableControllers()
        for (name, value) in files {
            let controller = String(name.prefix { $0 != "." })
            guard enabled.contains(controller), access(cgroup.path + "/" + name, F_OK) == 0 else { continue }
            try cgroup.write(name, value)
        }
    }

    /// The cgroups that must delegate controllers for `podshim/` to get them: from `mountPoint`
    /// down to `root`, both included (only `root` when it is not below `mountPoint`).
    static func ancestors(from mountPoint: String, to root: String) -> [Cgroup] {
        guard root.hasPrefix(mountPoint + "/") else { return [Cgroup(path: root)] }
        var chain = [Cgroup(path: mountPoint)]
        var current = mountPoint
        for component in root.dropFirst(mountPoint.count).split(separator: "/") {
            current += "/" + component
            chain.append(Cgroup(path: current))
        }
        return chain
    }

    /// Kills everything left in the pod and removes all of its cgroups.
    public func remove() throws(SystemError) {
        _ = try? pod.killAll()
        try pod.remove()
    }
}
