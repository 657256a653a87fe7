import Foundation
import Glibc
import PodshimSystem

/// Where the cgroup v2 hierarchy is mounted on this host and what it can enforce.
///
/// A *unified* host mounts cgroup2 at /sys/fs/cgroup with every controller. A *hybrid* host
/// (cgroup v1 for cpu/memory/…, cgroup2 at /sys/fs/cgroup/unified without them) or a host where
/// another v1 hierarchy holds a controller can still group processes in v2 — and kill them with
/// cgroup.kill — but not limit them. podshim never touches v1 hierarchies.
public struct CgroupHierarchy: Equatable, Sendable {
    /// The cgroup2 mount point.
    public let mountPoint: String
    /// Controllers the root offers (`cgroup.controllers`).
    public let controllers: Set<String>

    /// The controllers podshim's limits need.
    public static let limitControllers = ["cpu", "memory", "pids"]

    public init(mountPoint: String, controllers: Set<String>) {
        self.mountPoint = mountPoint
        self.controllers = controllers
    }

    /// Controllers podshim needs that this hierarchy lacks.
    public var missingControllers: [String] { Self.limitControllers.filter { !controllers.contains($0) } }

    /// Whether memory, CPU and pid limits can be enforced.
    public var canEnforceLimits: Bool { missingControllers.isEmpty }

    /// Finds the cgroup2 mount of this mount namespace (/sys/fs/cgroup first), or nil when cgroup v2
    /// is not mounted at all.
    public static func detect(mountInfo: String? = nil) -> CgroupHierarchy? {
        // Unreadable mountinfo reads as no cgroup2 mount: callers warn, or refuse with --require-cgroups.
        let text = mountInfo ?? ((try? FileSystem.readKernelFile("/proc/self/mountinfo")) ?? "")
        var mounts: [String] = []
        for line in text.split(separator: "\n") {
            // Fields: id parent major:minor root mountpoint options ... - fstype source superoptions
            let parts = line.components(separatedBy: " - ")
            guard parts.count == 2, parts[1].hasPrefix("cgroup2 ") else { continue }
            let fields = parts[0].split(separator: " ")
            if fields.count > 4 { mounts.append(Mounts.unescapeMountPath(String(fields[4]))) }
        }
        guard let mountPoint = mounts.first(where: { $0 == "/sys/fs/cgroup" }) ?? mounts.first else { return nil }
        return at(mountPoint)
    }

    /// The hierarchy mounted at `path` (also a fake cgroupfs in tests).
    public static func at(_ path: String) -> CgroupHierarchy {
        CgroupHierarchy(mountPoint: path, controllers: Cgroup(path: path).availableControllers())
    }
}
