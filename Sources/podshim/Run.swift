import ArgumentParser
import Foundation
import PodshimRuntime
import PodshimSpec

/// `podshim run pod.yaml`: run one pod in the foreground.
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a Pod manifest in the foreground until every container has exited.",
        discussion: """
            Each container's output is shown prefixed with its name and written to a CRI-format log file.

            Ctrl-C (or SIGTERM) stops the pod: SIGTERM to every container, SIGKILL when terminationGracePeriodSeconds ends; a second Ctrl-C kills at once. Afterwards no process, mount, overlay directory or volume of the pod is left; the logs stay.

            Exit status: 0 when every container exited 0, 1 otherwise, 2 for an invalid manifest (nothing is started then).
            """
    )

    @Argument(help: ArgumentHelp("A Kubernetes Pod manifest (YAML).", valueName: "pod.yaml"))
    var manifest: String

    @OptionGroup var host: HostOptions

    func run() throws {
        let runner: PodRunner
        do throws(ManifestError) {
            let spec = try ManifestParser.parse(contentsOf: manifest)
            runner = try PodRunner(spec: spec, configuration: host.runtimeConfiguration)
        } catch {
            throw invalid(error.description)
        }
        guard getuid() == 0 else {
            FileHandle.standardError.write(Data("podshim: run needs root (it creates namespaces and mounts)\n".utf8))
            throw ExitCode(1)
        }
        let result = runner.run()
        throw ExitCode(result.exitCode)
    }

    private func invalid(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("podshim: \(manifest): \(message)\n".utf8))
        return ExitCode(2)
    }
}
