import ArgumentParser
import Foundation
import PodshimImages
import PodshimNetwork
import PodshimRegistry
import PodshimRuntime
import PodshimSpec

/// `podshim run pod.yaml`: run the pods of a manifest in the foreground.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a Pod manifest in the foreground until every container has exited.",
        discussion: """
            Each container's output is shown prefixed with its name and written to a CRI-format log file. A file with several YAML documents runs its pods together (lines are prefixed pod/container); with CNI networking they reach each other by pod IP.

            Networking (--network): cni gives each pod an IP on the default CNI network of --cni-conf-dir (printed at start-up, written to the pod's /etc/hosts, released on exit, Ctrl-C included); none gives each pod only loopback; host runs every pod in the host's network namespace. The default is cni when a CNI configuration exists, else none (said once on stderr).

            Ctrl-C (or SIGTERM) stops the pods the Kubernetes way, every container at once against one deadline: preStop hooks, then each container's stop signal (lifecycle.stopSignal, SIGTERM by default), then SIGKILL exactly when terminationGracePeriodSeconds ends (2 s later when a preStop hook overran); a second Ctrl-C kills at once. Afterwards no process, mount, overlay directory, volume or network attachment of the pods is left; the logs stay.

            Exit status: 0 when every container exited 0, 1 otherwise, 2 for an invalid manifest (nothing is started then).
            """
    )

    @Argument(help: ArgumentHelp("A Kubernetes Pod manifest (YAML; several documents for several pods).", valueName: "pod.yaml"))
    var manifest: String

    @OptionGroup var host: HostOptions
    @OptionGroup var networkOptions: NetworkOptions

    @Option(help: ArgumentHelp("Registry configuration (JSON: mirrors, CA files, insecure registries) for the images the pods pull.", valueName: "file"))
    var registryConfig: String?

    @Option(help: ArgumentHelp("Write each SIGKILL's planned deadline, send time and observed exit (CLOCK_MONOTONIC ns) to this JSON file when the pod ends.", valueName: "file"))
    var terminationReport: String?

    func run() async throws {
        var specs: [PodSpec]
        do throws(ManifestError) {
            specs = try ManifestParser.parseAll(contentsOf: manifest)
        } catch {
            throw invalid(error.description)
        }
        var configuration = host.runtimeConfiguration
        let directory = networkOptions.directory()
        let mode: NetworkOptions.Mode
        var networkNote: String?
        if let chosen = networkOptions.network {
            mode = chosen
        } else if let first = directory.candidates().first {
            mode = .cni
            networkNote = "network: cni (\(first); --network none for loopback only)"
        } else {
            mode = .none
            networkNote = "network: none, each pod has loopback only (no CNI configuration in \(directory.directory))"
        }
        switch mode {
        case .cni: configuration.network = .cni(directory, timeoutSeconds: networkOptions.cniTimeout ?? 60)
        case .none: configuration.network = .none
        case .host: specs = specs.map { spec in var spec = spec; spec.hostNetwork = true; return spec }
        }
        try await pullImages(specs, imageDirectory: configuration.imageDirectory)
        let several = specs.count > 1
        let names = specs.flatMap { spec in spec.containers.map { several ? "\(spec.name)/\($0.name)" : $0.name } }
        var runners: [PodRunner] = []
        do throws(ManifestError) {
            for (index, spec) in specs.enumerated() {
                do throws(ManifestError) {
                    runners.append(try PodRunner(spec: spec, configuration: configuration,
                                                 printer: TerminalPrinter(names: names, pod: several ? spec.name : nil)))
                } catch {
                    throw several ? ManifestError(path: "documents[\(index)]." + error.path, message: error.message) : error
                }
            }
        } catch {
            throw invalid(error.description)
        }
        guard getuid() == 0 else {
            FileHandle.standardError.write(Data("podshim: run needs root (it creates namespaces and mounts)\n".utf8))
            throw ExitCode(1)
        }
        // Said once, when the pods are about to start (an invalid manifest gets its one error line only).
        if let networkNote { note(networkNote) }
        let results: [PodRunner.Result]
        if let runner = runners.first, !several {
            results = [await runner.run()]
        } else {
            results = await Self.runTogether(runners)
        }
        if let terminationReport {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let data = (try? encoder.encode(results.flatMap(\.kills))) ?? Data("[]".utf8) // cannot fail: strings, integers and booleans only
            if !FileManager.default.createFile(atPath: terminationReport, contents: data) {
                FileHandle.standardError.write(Data("podshim: cannot write the termination report \(terminationReport)\n".utf8))
            }
        }
        throw ExitCode(results.allSatisfy { $0.exitCode == 0 } ? 0 : 1)
    }

    /// Runs several pods at once; a stop signal goes to every one of them (a second one forces).
    private static func runTogether(_ runners: [PodRunner]) async -> [PodRunner.Result] {
        let sources = [SIGINT, SIGTERM].map { signo -> DispatchSourceSignal in
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: .global())
            source.setEventHandler { for runner in runners { runner.stop() } }
            source.resume()
            return source
        }
        defer { for source in sources { source.cancel() } }
        return await withTaskGroup(of: (Int, PodRunner.Result).self) { group in
            for (index, runner) in runners.enumerated() {
                group.addTask { (index, await runner.run(stopSignals: [])) }
            }
            var results: [(Int, PodRunner.Result)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
    }

    /// Each container's image as its imagePullPolicy says (the Kubernetes default: Always for
    /// `:latest` or no tag, IfNotPresent otherwise); images imported by hand are used as they are.
    /// Credentials come from the Docker config file; progress goes to stderr as plain lines.
    private func pullImages(_ specs: [PodSpec], imageDirectory: String) async throws {
        var wanted: [(image: String, policy: ImagePuller.PullPolicy, field: String)] = []
        for (podIndex, spec) in specs.enumerated() {
            for (index, container) in spec.containers.enumerated() where !wanted.contains(where: { $0.image == container.image }) {
                let policy = container.imagePullPolicy.flatMap(ImagePuller.PullPolicy.init(rawValue:))
                    ?? ImagePuller.PullPolicy.kubernetesDefault(for: container.image)
                let field = (specs.count > 1 ? "documents[\(podIndex)]." : "") + "spec.containers[\(index)].image"
                wanted.append((container.image, policy, field))
            }
        }
        guard wanted.contains(where: { $0.policy != .never && !ImageStore.isHostPath($0.image) }) else { return }
        let registry: RegistryConfiguration
        do {
            registry = try registryConfig.map { try RegistryConfiguration.load($0) } ?? RegistryConfiguration()
        } catch {
            FileHandle.standardError.write(Data("podshim: --registry-config: \(error)\n".utf8))
            throw ExitCode(1)
        }
        let puller = ImagePuller(store: ImageStore(directory: imageDirectory), configuration: registry)
        var failure: String?
        for entry in wanted {
            do {
                let parsed = try? RegistryReference(parsing: entry.image)  // host paths and store names: no credentials
                let credentials = try parsed.flatMap { try DockerConfig.credentials(for: $0, file: nil) }
                let printer = PullPrinter(terminal: false, quiet: false)
                _ = try await puller.ensure(entry.image, policy: entry.policy, credentials: credentials) { printer.show($0) }
            } catch {
                failure = "\(manifest): \(entry.field): pull \(entry.image): \(error)"
                break
            }
        }
        await puller.shutdown()
        if let failure {
            FileHandle.standardError.write(Data("podshim: \(failure)\n".utf8))
            throw ExitCode(1)
        }
    }

    private func note(_ text: String) {
        FileHandle.standardError.write(Data("podshim: \(text)\n".utf8))
    }

    private func invalid(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data("podshim: \(manifest): \(message)\n".utf8))
        return ExitCode(2)
    }
}
