import Foundation
import PodshimProcess

/// What podshim writes about a running pod, atomically, so another podshim can clean up after a crash.
public struct PodStateRecord: Codable, Equatable, Sendable {
    public var name: String
    public var namespace: String
    public var podID: String
    /// The podshim process that owns the pod.
    public var owner: ProcessIdentity
    public var sandbox: ProcessIdentity?
    public var containers: [String: ProcessIdentity]
    public var stateDirectory: String
    public var dataDirectory: String
    /// The pod cgroup, once podshim decided where it goes.
    public var cgroup: String?
    /// A kubelet's pod cgroup that holds the pod's leaves (never removed by podshim).
    public var cgroupParent: String?
    /// False when the host could not enforce the pod's cpu/memory/pids limits.
    public var limitsEnforced: Bool?
    /// True when a container of the pod is privileged, and so its sandbox.
    public var privileged: Bool?
    /// True when `podshim serve` owns the pod: a restarted daemon re-adopts it, so recovery after
    /// a crashed `podshim run` leaves it alone.
    public var daemon: Bool?
    /// Per container, the fd numbers the pause process holds for it (see `FDKeeper`): the daemon
    /// finds them here when it died before recording a start.
    public var keeperFDs: [String: [Int32]]?

    public init(name: String, namespace: String, podID: String, owner: ProcessIdentity,
                stateDirectory: String, dataDirectory: String) {
        self.name = name
        self.namespace = namespace
        self.podID = podID
        self.owner = owner
        self.sandbox = nil
        self.containers = [:]
        self.stateDirectory = stateDirectory
        self.dataDirectory = dataDirectory
    }

    /// The record at `path`; nil when it is missing or unreadable (records are replaced by
    /// rename, so unreadable means a foreign or damaged file, which callers treat as none).
    public static func load(_ path: String) -> PodStateRecord? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return try? JSONDecoder().decode(PodStateRecord.self, from: data) // unreadable: as missing, see above
    }
}
