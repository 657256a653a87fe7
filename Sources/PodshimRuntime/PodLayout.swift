import PodshimSpec

/// Every host path that belongs to one pod. Pure: computing it touches nothing.
public struct PodLayout: Equatable, Sendable {
    /// The pod's identifier: its `metadata.uid`, or one generated for it.
    public let podID: String
    /// `<state>/pods/<id>`: state file, /dev/shm, generated /etc files.
    public let stateDirectory: String
    /// `<root>/pods/<id>`: container layers and emptyDir volumes.
    public let dataDirectory: String
    /// `<logs>/<namespace>_<name>_<id>`, as the kubelet names pod log directories.
    public let logDirectory: String

    /// `logDirectory` replaces the default pod log directory (the CRI's `log_directory`).
    public init(pod: PodSpec, podID: String, configuration: RuntimeConfiguration, logDirectory: String? = nil) {
        self.podID = podID
        stateDirectory = configuration.stateDirectory + "/pods/" + podID
        dataDirectory = configuration.rootDirectory + "/pods/" + podID
        self.logDirectory = logDirectory ?? configuration.logDirectory + "/\(pod.namespace)_\(pod.name)_\(podID)"
    }

    /// The pod state record.
    public var stateFile: String { stateDirectory + "/pod.json" }
    /// A tmpfs shared as /dev/shm by every container of the pod (POSIX shared memory).
    public var shmDirectory: String { stateDirectory + "/shm" }
    /// Generated files bind-mounted over /etc/hostname, /etc/hosts, /etc/resolv.conf.
    public var etcDirectory: String { stateDirectory + "/etc" }
    public var volumesDirectory: String { dataDirectory + "/volumes" }

    public func volumeDirectory(_ name: String) -> String { volumesDirectory + "/" + name }
    public func containerDirectory(_ name: String) -> String { dataDirectory + "/containers/" + name }
    /// overlayfs upperdir, workdir and mount point of a container's root filesystem.
    public func upperDirectory(_ name: String) -> String { containerDirectory(name) + "/upper" }
    public func workDirectory(_ name: String) -> String { containerDirectory(name) + "/work" }
    public func rootfsDirectory(_ name: String) -> String { containerDirectory(name) + "/rootfs" }
    /// The CRI log file of attempt `attempt` (0 for the first run) of a container.
    public func logFile(container: String, attempt: Int) -> String {
        logDirectory + "/\(container)/\(attempt).log"
    }
}
