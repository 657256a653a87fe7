import ArgumentParser
import Foundation
import PodshimRuntime
import PodshimSpec

/// `podshim run pod.yaml`: run one pod in the foreground.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a Pod manifest in the foreground until every container has exited.",
        discussion: """
            Each container's output is shown prefixed with its name and written to a CRI-format log file.

            Ctrl-C (or SIGTERM) stops the pod the Kubernetes way, every container at once against one deadline: preStop hooks, then each container's stop signal (lifecycle.stopSignal, SIGTERM by default), then SIGKILL exactly when terminationGracePeriodSeconds ends (2 s later when a preStop hook overran); a second Ctrl-C kills at once. Afterwards no process, mount, overlay directory or volume of the pod is left; the logs stay.

            Exit status: 0 when every container exited 0, 1 otherwise, 2 for an invalid manifest (nothing is started then).
            """
    )

    @Argument(help: ArgumentHelp("A Kubernetes Pod manifest (YAML).", valueName: "pod.yaml"))
    var manifest: String

    @OptionGroup var host: HostOptions

    @Option(help: ArgumentHelp("Write each SIGKILL's planned deadline, send time and observed exit (CLOCK_MONOTONIC ns) to this JSON file when the pod ends.", valueName: "file"))
    var terminationReport: String?

    func run() async throws {
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
        let result = await runner.run()
        if let terminationReport {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = (try? encoder.encode(result.kills)) ?? Data("[]".utf8) // cannot fail: strings, integers and booleans only
            if !FileManager.default.createFile(atPath: terminationReport, contents: data) {
                FileHandle.standardError.write(Data("podshim: cannot write the termination report \(terminationReport)\n".utf8))
            }
        }
        throw ExitCode(result.exitCode)
    }

    private func invalid(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("podshim: \(manifest): \(message)\n".utf8))
        return ExitCode(2)
    }
}
