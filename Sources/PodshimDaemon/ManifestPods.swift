import Foundation
import Synchronization
import PodshimSystem
import GRPCCore
import Logging
import PodshimCRI
import PodshimRuntime
import PodshimSpec

/// Pods run from a manifest by the daemon (the PodService): each is a ``PodRunner`` — the same
/// supervision as `podshim run`: probes, restarts with back-off, graceful termination — on a
/// task of its own (no thread), its messages turned into events and log lines.
///
/// Each pod's manifest is kept (durably) in `<state>/manifest-pods/<uid>.yaml` from RunPod until
/// the pod has finished; a restarted daemon takes those pods back (``readopt()``), as it does the
/// CRI's sandboxes: their processes keep running through a restart (or a crash) of the daemon.
final class ManifestPods: Sendable {
    final class Entry: Sendable {
        let id: String
        let spec: PodSpec
        let runner: PodRunner
        let done = ExitSignal()

        init(id: String, spec: PodSpec, runner: PodRunner) {
            self.id = id
            self.spec = spec
            self.runner = runner
        }
    }

    let events = EventHub<Podshim_V1_PodEvent>()
    private let configuration: RuntimeConfiguration
    private let logger: Logger
    private let entries = Mutex<[String: Entry]>([:])

    init(configuration: RuntimeConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Where the manifests of running pods are kept.
    private var directory: String { configuration.stateDirectory + "/manifest-pods" }
    private func manifestPath(_ id: String) -> String { directory + "/" + id + ".yaml" }

    var all: [Entry] { entries.withLock { Array($0.values).sorted { $0.id < $1.id } } }

    func entry(_ id: String) throws(PodshimError) -> Entry {
        _ = try RequestCheck.id(id, field: "pod_id")
        return try RequestCheck.unique(id, in: all, id: \.id, kind: "pod", kinds: "pods", field: "pod_id")
    }

    /// Parses, plans and starts the pod; returns its id (the manifest's uid, or a new one).
    func run(manifest: String) throws(PodshimError) -> String {
        if manifest.utf8.count > 1 << 20 { throw CRIError.invalidArgument("manifest", "larger than 1 MiB") }
        let parsed: PodSpec
        do {
            parsed = try ManifestParser.parse(yaml: manifest)
        } catch {
            throw CRIError.invalidArgument("manifest." + error.path, error.message)
        }
        var spec = parsed
        if spec.uid == nil { spec.uid = UUID().uuidString.lowercased() }
        let id = spec.uid ?? ""
        if entries.withLock({ $0[id] != nil }) {
            throw CRIError.alreadyExists("pod with uid \(id) is already running")
        }
        if entries.withLock({ $0[id] != nil }) {
            throw CRIError.alreadyExists("pod with uid \(id) is already running")
        }
        let runner: PodRunner
        do {
            runner = try PodRunner(spec: spec, configuration: configuration, printer: printer(for: id, names: spec.containers.map(\.name)), daemon: true)
        } catch {
            throw CRIError.invalidArgument("manifest." + error.path, error.message)
        }
        let entry = Entry(id: id, spec: spec, runner: runner)
        let inserted: Bool = entries.withLock { entries in
            guard entries[id] == nil else { return false }
            entries[id] = entry
            return true
        }
        guard inserted else { throw CRIError.alreadyExists("pod with uid \(id) is already running") }
        do {
            // Kept before anything is made: a restarted daemon finds the pod by it.
            try FileSystem.createDirectory(directory, mode: 0o700)
            try FileSystem.writeAtomically(manifestPath(id), manifest, mode: 0o600)
        } catch {
            _ = entries.withLock { $0.removeValue(forKey: id) }
            throw PodError("pod \(id) manifest", error).podshimError
        }
        launch(entry)
        return id
    }

    /// Takes back the pods a previous daemon ran (at start-up, before serving). A pod whose set-up
    /// never began (no record of it) is dropped: its RunPod is rolled back. One line per finding.
    func readopt() -> [String] {
        var report: [String] = []
        // No directory: no pod service pod ever ran here.
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
        for name in names {
            let path = directory + "/" + name
            guard name.hasSuffix(".yaml") else {
                if name.contains(".tmp.") { unlink(path) } // an interrupted write of a manifest
                continue
            }
            let id = String(name.dropLast(5))
            guard let manifest = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }),
                  var spec = try? ManifestParser.parse(yaml: manifest) else { // kept by this daemon, so parseable unless damaged (reported)
                report.append("pod \(id): its kept manifest \(path) is unreadable; left in place")
                continue
            }
            spec.uid = id
            let layout = PodLayout(pod: spec, podID: id, configuration: configuration)
            guard let record = PodStateRecord.load(layout.stateFile) else {
                unlink(path)
                report.append("pod \(id) (\(spec.namespace)/\(spec.name)): RunPod was interrupted before the pod was set up: dropped")
                continue
            }
            do {
                let runner = try PodRunner(spec: spec, configuration: configuration, printer: printer(for: id, names: spec.containers.map(\.name)),
                                           daemon: true, adopting: record)
                let entry = Entry(id: id, spec: spec, runner: runner)
                entries.withLock { $0[id] = entry }
                launch(entry)
                report.append("pod \(id) (\(spec.namespace)/\(spec.name)): re-adopting")
            } catch {
                report.append("pod \(id): cannot be planned again (\(error.path): \(error.message)); left to `podshim cleanup`")
            }
        }
        return report
    }

    /// Messages of a pod: the daemon's log and the WatchPods stream.
    private func printer(for id: String, names: [String]) -> TerminalPrinter {
        let events = self.events
        let logger = self.logger
        return TerminalPrinter(names: names, messages: { message in
            logger.info("pod \(id.prefix(13)): \(message)")
            var event = Podshim_V1_PodEvent()
            event.podID = id
            event.timestamp = nowNanoseconds()
            event.message = message
            events.publish(event)
        })
    }

    /// Runs the pod's supervision on a task of its own; once it has finished (torn down), its
    /// manifest is no longer kept: nothing of it is left to take back.
    private func launch(_ entry: Entry) {
        let logger = self.logger
        let path = manifestPath(entry.id)
        Task.detached {
            let result = await entry.runner.run(stopSignals: [])
            if !result.problems.isEmpty {
                logger.warning("pod \(entry.id.prefix(13)): \(result.problems.map(\.description).joined(separator: "; "))")
            }
            unlink(path)
            entry.done.fire()
        }
    }

    func stop(_ entry: Entry, graceSeconds: Int64?) {
        entry.runner.stop(graceSeconds: graceSeconds)
    }

    /// Forces the pod down if it still runs, waits for its teardown, forgets it.
    func remove(_ entry: Entry) async throws(PodshimError) {
        if !entry.done.hasFired {
            entry.runner.stop(graceSeconds: 0)
            guard await entry.done.wait(seconds: 60) else {
                throw CRIError.internal("pod \(entry.id) did not stop within 60 s")
            }
        }
        _ = entries.withLock { $0.removeValue(forKey: entry.id) }
    }

    static func status(_ entry: Entry) -> Podshim_V1_PodStatusResponse {
        let snapshot = entry.runner.status
        var response = Podshim_V1_PodStatusResponse()
        response.podID = entry.id
        response.name = entry.spec.name
        response.namespace = entry.spec.namespace
        response.phase = snapshot.phase.rawValue
        response.finished = snapshot.finished
        let containersReady = !snapshot.containers.isEmpty && snapshot.containers.allSatisfy(\.ready)
        response.conditions = [
            ("PodReadyToStartContainers", !snapshot.finished),
            ("ContainersReady", containersReady),
            ("Ready", snapshot.ready && !snapshot.finished),
        ].map { type, status in
            var condition = Podshim_V1_PodCondition()
            condition.type = type
            condition.status = status
            return condition
        }
        response.containers = snapshot.containers.map { container in
            var state = Podshim_V1_ContainerState()
            state.name = container.name
            state.state = container.state
            state.reason = container.reason
            state.exitCode = container.exitCode
            state.startedAt = container.startedAt
            state.finishedAt = container.finishedAt
            state.restartCount = Int32(container.restartCount)
            state.ready = container.ready
            state.message = container.message
            return state
        }
        return response
    }
}

/// `podshim.v1.PodService`.
struct PodServiceProvider: Podshim_V1_PodService.SimpleServiceProtocol {
    let pods: ManifestPods

    func runPod(request: Podshim_V1_RunPodRequest, context: ServerContext) async throws -> Podshim_V1_RunPodResponse {
        if request.manifest.isEmpty { throw CRIError.invalidArgument("manifest", "required") }
        let pods = self.pods
        let manifest = request.manifest
        var response = Podshim_V1_RunPodResponse()
        response.podID = try await offload { try pods.run(manifest: manifest) }
        return response
    }

    func podStatus(request: Podshim_V1_PodStatusRequest, context: ServerContext) async throws -> Podshim_V1_PodStatusResponse {
        ManifestPods.status(try pods.entry(request.podID))
    }

    func listPods(request: Podshim_V1_ListPodsRequest, context: ServerContext) async throws -> Podshim_V1_ListPodsResponse {
        var response = Podshim_V1_ListPodsResponse()
        response.pods = pods.all.map(ManifestPods.status)
        return response
    }

    func stopPod(request: Podshim_V1_StopPodRequest, context: ServerContext) async throws -> Podshim_V1_StopPodResponse {
        let entry = try pods.entry(request.podID)
        pods.stop(entry, graceSeconds: request.gracePeriodSeconds < 0 ? nil : request.gracePeriodSeconds)
        return Podshim_V1_StopPodResponse()
    }

    func removePod(request: Podshim_V1_RemovePodRequest, context: ServerContext) async throws -> Podshim_V1_RemovePodResponse {
        do {
            try await pods.remove(try pods.entry(request.podID))
        } catch let error where error.code == .notFound {
        }
        return Podshim_V1_RemovePodResponse()
    }

    func watchPods(request: Podshim_V1_WatchPodsRequest, response: RPCWriter<Podshim_V1_PodEvent>, context: ServerContext) async throws {
        for await event in pods.events.subscribe() {
            try await response.write(event)
        }
    }
}
