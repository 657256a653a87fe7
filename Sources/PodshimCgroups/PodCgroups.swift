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
    /// How the leaves are named, and whether podshim owns the pod cgroup.
    public let naming: Naming

    /// Leaf names. podshim's own pod cgroup has `pause` and `container-<name>`; under a
    /// kubelet's `cgroup_parent` (which the kubelet creates, sizes and removes) the leaves are
    /// named by id, as the kubelet and cadvisor expect: `<id>` with the cgroupfs driver,
    /// `podshim-<id>.scope` with the systemd one.
    public struct Naming: Sendable, Equatable {
        public var sandbox: String
        public var containerPrefix: String
        public var containerSuffix: String
        /// podshim created the pod cgroup and removes it with the pod.
        public var ownsPod: Bool

        public static let podshim = Naming(sandbox: "pause", containerPrefix: "container-", containerSuffix: "", ownsPod: true)

        /// Leaves under a kubelet's parent: `sandboxID` for the pause process.
        public static func kubelet(sandboxID: String, systemd: Bool) -> Naming {
            systemd
                ? Naming(sandbox: "podshim-\(sandboxID).scope", containerPrefix: "podshim-", containerSuffix: ".scope", ownsPod: false)
                : Naming(sandbox: sandboxID, containerPrefix: "", containerSuffix: "", ownsPod: false)
        }

        public init(sandbox: String, containerPrefix: String, containerSuffix: String, ownsPod: Bool) {
            self.sandbox = sandbox
            self.containerPrefix = containerPrefix
            self.containerSuffix = containerSuffix
            self.ownsPod = ownsPod
        }
    }

    /// The cgroups of a pod that already exist (re-adopted after a restart).
    public init(pod: Cgroup, controllers: Set<String>, naming: Naming = .podshim) {
        self.pod = pod
        self.controllers = controllers
        self.naming = naming
    }

    public var sandbox: Cgroup { pod.child(naming.sandbox) }

    /// Creates the leaf of a container added to a running pod and writes its limit files.
    public func addContainer(_ name: String, resources: CgroupResources) throws(SystemError) -> Cgroup {
        let leaf = container(name)
        try leaf.create()
        try Self.apply(CgroupFiles.files(for: resources), to: leaf)
        return leaf
    }
    public func container(_ name: String) -> Cgroup { pod.child(naming.containerPrefix + name + naming.containerSuffix) }

    /// The path of a kubelet's `cgroup_parent` under the cgroup mount: a cgroupfs path as is, a
    /// systemd slice (`kubepods-burstable-pod<uid>.slice`) nested by its dashes
    /// (`/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid>.slice`).
    /// Nil when the value does not fit the driver.
    public static func parentPath(_ parent: String, systemd: Bool) -> String? {
        if systemd {
            guard parent.hasSuffix(".slice"), !parent.contains("/"), parent.count > 6 else { return nil }
            let name = String(parent.dropLast(6))
            if name == "-" { return "" }
            let parts = name.split(separator: "-", omittingEmptySubsequences: false)
            guard !parts.contains(where: \.isEmpty) else { return nil }
            var path = ""
            for index in parts.indices {
                path += "/" + parts[...index].joined(separator: "-") + ".slice"
            }
            return path
        }
        guard parent.hasPrefix("/"),
              !parent.split(separator: "/").contains(where: { $0 == ".." || $0 == "." }) else { return nil }
        var path = parent
        while path.hasSuffix("/") { path.removeLast() }
        return path
    }

    /// The pod cgroup path for `podID` under `root` (the directory holding `podshim/`).
    public static func path(root: String, podID: String) -> String { root + "/podshim/pod-" + podID }

    /// Creates the pod's cgroups, enabling controllers on the way down from the hierarchy's mount
    /// point, and writes the pod's and each container's limit files.
    public static func create(
        hierarchy: CgroupHierarchy, root: String, podID: String,
        containers: [(name: String, resources: CgroupResources)], podPidsLimit: Int64?
    ) throws(SystemError) -> PodCgroups {
        let wanted = controllers(of: hierarchy)
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
        try cgroups.finish(podResources: podResources, containers: containers)
        return cgroups
    }

    /// The pod's leaves under a kubelet's `cgroup_parent` (`parent`: its absolute path), which
    /// is created when missing and never removed. `podResources` (the sandbox's resources and
    /// overhead) are written to the parent when given.
    public static func create(
        hierarchy: CgroupHierarchy, parent: String, naming: Naming, podResources: CgroupResources?
    ) throws(SystemError) -> PodCgroups {
        let wanted = controllers(of: hierarchy)
        let pod = Cgroup(path: parent)
        for ancestor in ancestors(from: hierarchy.mountPoint, to: parent).dropLast() {
            if access(ancestor.path, F_OK) != 0 { try ancestor.create() }
            try ancestor.enableControllers(wanted)
        }
        if access(parent, F_OK) != 0 { try pod.create() }
        let controllers = try pod.enableControllers(wanted)
        let cgroups = PodCgroups(pod: pod, controllers: controllers, naming: naming)
        if let podResources {
            try apply(CgroupFiles.filesOfSetValues(for: podResources), to: pod)
        }
        try cgroups.sandbox.create()
        return cgroups
    }

    /// Controllers podshim enables for its pods: cpu, memory, pids, and on a full cgroup v2
    /// host cpuset and hugetlb (never on a hybrid host's shared v2 root).
    static func controllers(of hierarchy: CgroupHierarchy) -> [String] {
        hierarchy.canEnforceLimits ? CgroupHierarchy.limitControllers + ["cpuset", "hugetlb"] : CgroupHierarchy.limitControllers
    }

    private func finish(podResources: CgroupResources, containers: [(name: String, resources: CgroupResources)]) throws(SystemError) {
        let cgroups = self
        try Self.apply(CgroupFiles.files(for: podResources, oomGroup: false), to: pod)
        try cgroups.sandbox.create()
        for (name, resources) in containers {
            let leaf = cgroups.container(name)
            try leaf.create()
            try Self.apply(CgroupFiles.files(for: resources), to: leaf)
        }
    }

    /// Rewrites a container's limit files (the CRI's UpdateContainerResources).
    public static func update(_ leaf: Cgroup, resources: CgroupResources) throws(SystemError) {
        try apply(CgroupFiles.files(for: resources), to: leaf)
    }

    /// Rewrites the pod cgroup's files that `resources` sets (UpdatePodSandboxResources).
    public func updatePod(_ resources: CgroupResources) throws(SystemError) {
        try Self.apply(CgroupFiles.filesOfSetValues(for: resources), to: pod)
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

    /// Checks raw `unified` keys against `cgroup` before anything is written: a plain file name
    /// of an enabled controller that exists. Returns the problem, naming the key, or nil.
    public static func checkUnified(_ keys: [String], against cgroup: Cgroup) -> String? {
        let enabled = cgroup.availableControllers()
        for key in keys.sorted() {
            if key.contains("/") || key.hasPrefix(".") || key.isEmpty {
                return "\(key): not a cgroup file name"
            }
            let controller = String(key.prefix { $0 != "." })
            if controller != "cgroup" && !enabled.contains(controller) {
                return "\(key): the \(controller) controller is not enabled here"
                    + " (enabled: \(enabled.sorted().joined(separator: " ")))"
            }
            if access(cgroup.path + "/" + key, F_OK) != 0 {
                return "\(key): no such cgroup file"
            }
        }
        return nil
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

    /// Kills everything left in the pod and removes all of its cgroups; under a kubelet's
    /// parent, only podshim's leaves (the sandbox's and `containers`').
    public func remove(containers: [String] = []) throws(SystemError) {
        if naming.ownsPod {
            _ = try? pod.killAll() // remove() kills again when busy and throws what it cannot remove
            try pod.remove()
            return
        }
        for leaf in [sandbox] + containers.map(container) where access(leaf.path, F_OK) == 0 {
            _ = try? leaf.killAll() // remove() kills again when busy and throws what it cannot remove
            try leaf.remove()
        }
    }
}
