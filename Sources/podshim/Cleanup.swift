import ArgumentParser
import Foundation
import PodshimRuntime

/// `podshim cleanup`: remove what a crashed podshim left behind.
struct Cleanup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove pods left behind by a podshim that died: their processes, mounts and directories.",
        discussion: """
            Only pods whose owning podshim process is gone are touched, and a recorded process is killed only if its PID and start time both still match. `podshim run` does this itself before it starts a pod.
            """
    )

    @OptionGroup var host: HostOptions

    func run() throws {
        for line in Recovery.cleanUpAbandonedPods(configuration: host.runtimeConfiguration) {
            print("podshim: \(line)")
        }
    }
}
