import ArgumentParser
import Foundation
import PodshimRuntime

/// Where podshim keeps its state, data, images and logs on the host.
struct HostOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Volatile state: pod records, each pod's /dev/shm and /etc files.", valueName: "dir"))
    var stateDir = "/run/podshim"

    @Option(help: ArgumentHelp("Persistent data: container layers (overlay upper/work) and emptyDir volumes. Must not be on overlayfs.", valueName: "dir"))
    var root = "/var/lib/podshim"

    @Option(help: ArgumentHelp("The image store: an image name N is the root filesystem <dir>/N/rootfs. Default: <root>/images.", valueName: "dir"))
    var imageDir: String?

    @Option(help: ArgumentHelp("Container logs (CRI format): <dir>/<namespace>_<pod>_<uid>/<container>/0.log.", valueName: "dir"))
    var logDir = "/var/log/podshim/pods"

    @Option(help: ArgumentHelp("The static pause binary. Default: podshim-pause next to the podshim executable.", valueName: "path"))
    var pauseBinary: String?

    @Option(help: ArgumentHelp("The cgroup v2 directory under which podshim/pod-<uid>/ is created. Default: the cgroup2 mount point.", valueName: "dir"))
    var cgroupRoot: String?

    @Flag(help: "Refuse to start when cgroup v2 cannot enforce cpu, memory and pids limits (on a cgroup v1 or hybrid host podshim otherwise runs pods without limits, with a warning).")
    var requireCgroups = false

    @Option(help: ArgumentHelp("pids.max of every pod cgroup, like the kubelet's podPidsLimit. Default: no limit.", valueName: "n"))
    var podPidsLimit: Int64?

    var runtimeConfiguration: RuntimeConfiguration {
        RuntimeConfiguration(
            stateDirectory: absolute(stateDir), rootDirectory: absolute(root),
            imageDirectory: imageDir.map(absolute), logDirectory: absolute(logDir),
            pauseBinary: pauseBinary.map(absolute) ?? Self.defaultPauseBinary(),
            cgroupRoot: cgroupRoot.map(absolute), requireCgroups: requireCgroups, podPidsLimit: podPidsLimit)
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
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        let sibling = (executable as NSString).deletingLastPathComponent + "/podshim-pause"
        if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
        return "/usr/local/libexec/podshim/podshim-pause"
    }
}
