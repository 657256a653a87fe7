import ArgumentParser
import Foundation
import PodshimRuntime

/// Where podshim keeps its state, data, images and logs on the host.
///
/// Every option is nil unless given on the command line, so that `podshim serve` can tell a
/// flag from its config file's value; the built-in defaults apply in `runtimeConfiguration`.
struct HostOptions: ParsableArguments {
    static let defaultStateDir = "/run/podshim"
    static let defaultRoot = "/var/lib/podshim"
    static let defaultLogDir = "/var/log/podshim/pods"

    @Option(help: ArgumentHelp("Volatile state: pod records, each pod's /dev/shm and /etc files. Default: \(HostOptions.defaultStateDir).", valueName: "dir"))
    var stateDir: String?

    @Option(help: ArgumentHelp("Persistent data: container layers (overlay upper/work) and emptyDir volumes. Must not be on overlayfs. Default: \(HostOptions.defaultRoot).", valueName: "dir"))
    var root: String?

    @Option(help: ArgumentHelp("The image store: an image name N is the root filesystem <dir>/N/rootfs. Default: <root>/images.", valueName: "dir"))
    var imageDir: String?

    @Option(help: ArgumentHelp("Container logs (CRI format): <dir>/<namespace>_<pod>_<uid>/<container>/0.log. Default: \(HostOptions.defaultLogDir).", valueName: "dir"))
    var logDir: String?

    @Option(help: ArgumentHelp("The static pause binary. Default: podshim-pause next to the podshim executable, else /usr/local/libexec/podshim/podshim-pause.", valueName: "path"))
    var pauseBinary: String?

    @Option(help: ArgumentHelp("The cgroup v2 directory under which podshim/pod-<uid>/ is created. Default: the cgroup2 mount point.", valueName: "dir"))
    var cgroupRoot: String?

    @Flag(inversion: .prefixedNo, help: "Refuse to start when cgroup v2 cannot enforce cpu, memory and pids limits (on a cgroup v1 or hybrid host podshim otherwise runs pods without limits, with a warning). Default: off.")
    var requireCgroups: Bool?

    @Option(help: ArgumentHelp("pids.max of every pod cgroup, like the kubelet's podPidsLimit. Default: no limit.", valueName: "n"))
    var podPidsLimit: Int64?

    /// The command line alone over the built-in defaults (`podshim run`, `podshim cleanup`).
    var runtimeConfiguration: RuntimeConfiguration {
        runtimeConfiguration(file: ServeConfigFile.Values())
    }

    /// The command line, else the config file's value, else the built-in default.
    /// Relative paths on the command line are taken from the working directory; the file's are absolute.
    func runtimeConfiguration(file: ServeConfigFile.Values) -> RuntimeConfiguration {
        RuntimeConfiguration(
            stateDirectory: stateDir.map(absolute) ?? file.stateDir ?? Self.defaultStateDir,
            rootDirectory: root.map(absolute) ?? file.root ?? Self.defaultRoot,
            imageDirectory: imageDir.map(absolute) ?? file.imageDir,
            logDirectory: logDir.map(absolute) ?? file.logDir ?? Self.defaultLogDir,
            pauseBinary: pauseBinary.map(absolute) ?? file.pauseBinary ?? Self.defaultPauseBinary(),
            cgroupRoot: cgroupRoot.map(absolute) ?? file.cgroupRoot,
            requireCgroups: requireCgroups ?? file.requireCgroups ?? false,
            podPidsLimit: podPidsLimit ?? file.podPidsLimit)
    }

    func validate() throws {
        if let podPidsLimit, podPidsLimit < 1 {
            throw ValidationError("--pod-pids-limit must be at least 1")
        }
    }

    private func absolute(_ path: String) -> String {
        path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
    }

    /// `podshim-pause` beside the running executable, else the installed one.
    static func defaultPauseBinary() -> String {
        // No /proc/self/exe: fall back to the installed podshim-pause.
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let sibling = (executable as NSString).deletingLastPathComponent + "/podshim-pause"
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        return "/usr/local/libexec/podshim/podshim-pause"
    }
}
