import Dispatch
import Foundation
import Glibc
import PodshimCgroups
import PodshimSpec
import PodshimSystem
import PodshimNetwork

/// Runs one pod in the foreground (`podshim run`): start the sandbox and the containers, stream
/// their output, wait until every container has exited, then remove everything but the logs.
///
/// A stop request (SIGINT/SIGTERM to podshim) sends SIGTERM to every container and SIGKILL when
/// the pod's grace period ends; a second request kills at once.
///
/// ``run(stopSignals:)`` is one task: it awaits the pod's events (no thread waits for a pod) and
/// hands blocking kernel work to ``offload(_:)``.
public final class PodRunner: @unchecked Sendable { // loop state is touched only by the one run task; `status` and stop requests go through `snapshotLock`
    public let pod: Pod
    private let printer: TerminalPrinter
    private var stopRequests = 0
    private let termination: Termination
    private let launcher: any Launcher
    private var supervisor: Supervisor!
    private let snapshotLock = NSLock()
    private var snapshot = PodStatusSnapshot()
    /// A grace period given with a stop request (the API's StopPod), overriding the manifest's.
    private var requestedGrace: Int64?
    /// The pod's record when this runner takes over a pod a previous daemon ran.
    private let adopting: PodStateRecord?
    /// Pod networking through CNI (nil: loopback only).
    private let network: CNIManager?

    /// The pod's status as of its last event; safe from any thread.
    public var status: PodStatusSnapshot { snapshotLock.withLock { snapshot } }

    /// Asks the pod to stop (from any thread): the graceful flow with `graceSeconds`, or the
    /// manifest's grace period when nil; a second request forces.
    public func stop(graceSeconds: Int64? = nil) {
        snapshotLock.withLock { requestedGrace = graceSeconds }
        pod.events.post(.stopRequested)
    }

    /// The outcome of a run.
    public struct Result: Sendable {
        /// One entry per container, in manifest order.
        public var terminations: [(name: String, termination: ContainerTermination?)]
        /// Setup or teardown problems.
        public var problems: [PodError]
        /// When each SIGKILL was due and sent, and when its exit was seen.
        public var kills: [Termination.KillRecord] = []
        /// 0 when every container exited 0 and nothing went wrong, else 1.
        public var exitCode: Int32 {
            problems.isEmpty && terminations.allSatisfy { $0.termination?.exitCode == 0 } ? 0 : 1
        }
    }

    /// Plans the pod (images, commands) without starting anything.
    /// `daemon`: the pod belongs to `podshim serve` (its output goes through FIFOs and its pause
    /// process keeps what must outlive the daemon; recovery leaves it to the daemon).
    /// `adopting`: the record of the pod as a previous daemon ran it; ``run(stopSignals:)`` then
    /// takes its processes back instead of starting them.
    public init(spec: PodSpec, configuration: RuntimeConfiguration, printer: TerminalPrinter? = nil,
                launcher: any Launcher = PodLauncher(), daemon: Bool = false,
                adopting: PodStateRecord? = nil) throws(ManifestError) {
        self.launcher = launcher
        self.adopting = adopting
        network = spec.hostNetwork ? nil : configuration.cniManager()
        let podID = spec.uid ?? UUID().uuidString.lowercased()
        let layout = PodLayout(pod: spec, podID: podID, configuration: configuration)
        guard access(configuration.pauseBinary, X_OK) == 0 else {
            throw ManifestError(path: "--pause-binary",
                            message: "\(configuration.pauseBinary) is not an executable (build it with hack/build-pause.sh)")
        }
        let hierarchy = CgroupHierarchy.detect()
        if configuration.requireCgroups {
            guard let hierarchy else {
                throw ManifestError(path: "--require-cgroups", message: "no cgroup v2 hierarchy is mounted")
            }
            guard hierarchy.canEnforceLimits else {
                throw ManifestError(path: "--require-cgroups", message: "cgroup v2 at \(hierarchy.mountPoint) has no "
                    + "\(hierarchy.missingControllers.joined(separator: ", ")) controller: limits cannot be enforced")
            }
        }
        let plans = try PodPlanner.plan(spec, layout: layout, configuration: configuration)
        pod = Pod(spec: spec, layout: layout, configuration: configuration, plans: plans, cgroupHierarchy: hierarchy,
                  daemon: daemon)
        let printer = printer ?? TerminalPrinter(names: spec.containers.map(\.name))
        self.printer = printer
        let termination = Termination(sandbox: { [pod] in pod.sandbox }, onEvent: { event in
            switch event {
            case .started, .stopSignalSent:
                break
            case .preStopFinished(let name, let problem):
                printer.message("container \(name): preStop " + (problem.map { "failed: \($0)" } ?? "done"))
            case .extended(let name, let seconds):
                printer.message("container \(name): preStop still running at the end of the grace period: \(Int(seconds)) s more")
            case .killed(let name, let lateness):
                printer.message("container \(name): SIGKILL (\(String(format: "%.0f", lateness)) µs after its deadline)")
            case .signalFailed(let name, let signal, let problem):
                printer.message("container \(name): \(signal.name) could not be sent: \(problem)")
            }
        })
        self.termination = termination
        supervisor = Supervisor(pod: pod, termination: termination, printer: printer, launcher: launcher)
    }

    /// Runs the pod to completion. `stopSignals` are turned into stop requests while it runs.
    public func run(stopSignals: [Int32] = [SIGINT, SIGTERM]) async -> Result {
        let signalSources = stopSignals.map { signo -> DispatchSourceSignal in
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: .global())
            source.setEventHandler { [events = pod.events] in events.post(.stopRequested) }
            source.resume()
            return source
        }
        defer {
            for source in signalSources { source.cancel() }
            for signo in stopSignals { signal(signo, SIG_DFL) }
        }

        var problems: [PodError] = []
        if let adopting {
            await offload { [self] in adopt(adopting) }
            return await finish(problems: [])
        }
        let refused: PodError? = await offload { [self] in
            for line in Recovery.cleanUpAbandonedPods(configuration: pod.configuration, hierarchy: pod.cgroupHierarchy) {
                printer.message(line)
            }
            guard let owner = runningOwner() else { return nil }
            return PodError("pod \(pod.spec.name)", message: "uid \(pod.layout.podID) is already running (podshim pid \(owner))")
        }
        if let refused { return Result(terminations: [], problems: [refused]) }
        if let problem = await offload({ [self] in setUp() }) {
            printer.message(problem.description)
            problems.append(problem)
            requestStop(reason: "setup failed")
        }
        return await finish(problems: problems)
    }

    /// Supervises the pod until its containers are done for good, tears it down, reports.
    private func finish(problems: [PodError]) async -> Result {
        var problems = problems
        await waitForContainers()
        await offload { [self] in
            for container in pod.containers {
                container.output?.waitDrained(timeoutSeconds: 2)
            }
        }
        problems += await tearDown()
        let terminations = pod.containers.map { (name: $0.name, termination: $0.termination) }
        for (name, termination) in terminations {
            guard let termination else { continue }
            var line = "container \(name): exit code \(termination.exitCode) (\(termination.reason)"
            if let signal = termination.signal { line += ", \(signal.name)" }
            if let message = termination.message { line += ": \(message)" }
            line += ")"
            if let usage = termination.usage?.summary, !usage.isEmpty { line += ", " + usage }
            printer.message(line)
        }
        takeSnapshot(finished: true)
        return Result(terminations: terminations, problems: problems, kills: termination.records)
    }

    /// Prepares the pod, starts its sandbox and containers (blocking: on a Dispatch worker).
    private func setUp() -> PodError? {
        var sandboxMilliseconds = 0.0
        do throws(PodError) {
            try pod.prepare()
            let begin = MonotonicInstant.now()
            try launcher.startSandbox(of: pod)
            sandboxMilliseconds = MonotonicInstant.now().milliseconds(since: begin)
            if let notice = pod.cgroupNotice { printer.message("warning: " + notice) }
            if let network, let pause = pod.sandbox {
                let spec = pod.spec
                // Every container's hostPorts, as the kubelet passes them in PodSandboxConfig.port_mappings.
                let mappings = spec.containers.flatMap(\.ports).compactMap { port -> PortMapping? in
                    guard let hostPort = port.hostPort else { return nil }
                    return PortMapping(hostPort: hostPort, containerPort: port.containerPort,
                                       protocol: port.protocol.lowercased(), hostIP: port.hostIP ?? "")
                }
                let request = PodNetworkRequest(podID: pod.layout.podID, namespace: spec.namespace, name: spec.name,
                                                uid: spec.uid ?? pod.layout.podID, portMappings: mappings,
                                                cgroupPath: pod.cgroups?.pod.path)
                do throws(PodshimError) {
                    let attachment = try network.attach(request, pausePID: pause.pid)
                    do {
                        try pod.writeHosts(ips: attachment.ips)
                    } catch {
                        throw PodshimError.from(error)
                    }
                    printer.message("pod \(spec.name): IP \(attachment.ips.joined(separator: ", ")) (CNI network \(attachment.network))")
                } catch {
                    for problem in network.takeProblems() { printer.message("warning: " + problem) }
                    throw PodError("pod \(spec.name) network", error)
                }
            }
            printer.message("pod \(pod.spec.name) (uid \(pod.layout.podID)): sandbox pid \(pod.sandbox?.pid ?? 0) "
                + "(\(String(format: "%.1f", sandboxMilliseconds)) ms), logs in \(pod.layout.logDirectory)")
            if SandboxPlanner.isPrivileged(pod.spec) {
                let names = pod.spec.containers.filter { $0.securityContext.privileged == true }.map(\.name)
                printer.message("privileged sandbox: container \(names.joined(separator: ", ")) is privileged")
            }
            if let cgroups = pod.cgroups {
                printer.message("cgroup \(cgroups.pod.path)" + (pod.cgroupNotice == nil ? "" : " (limits not enforced)"))
            }
            for container in pod.containers {
                let begin = MonotonicInstant.now()
                try launcher.start(container, in: pod, sink: { [printer] in printer.containerLine($0, $1, $2) })
                supervisor.started(container)
                let milliseconds = MonotonicInstant.now().milliseconds(since: begin)
                printer.message("container \(container.name) started: pid \(container.process?.pid ?? 0), "
                    + "setup to execve \(String(format: "%.1f", milliseconds)) ms")
            }
        } catch {
            return error
        }
        return nil
    }

    /// Takes back a pod a previous daemon ran (blocking: on a Dispatch worker): its pause process
    /// and its containers' processes, when PID and start time match the record; a container that
    /// exited meanwhile gets the exit status its pause process kept; one never started is started.
    /// Restart counts continue from the containers' log files; probes start over.
    private func adopt(_ record: PodStateRecord) {
        let events = pod.events
        let pause = record.sandbox.flatMap(Adoption.reopen)
        pod.adoptSandbox(pause, cgroupPath: record.cgroup)
        if let pause {
            printer.message("pod \(pod.spec.name) (uid \(pod.layout.podID)): re-adopted, sandbox pid \(pause.pid)")
            do {
                try Adoption.watch(pause, identity: record.sandbox) { status in
                    events.post(.sandboxExited(status ?? .exited(code: 255)))
                }
            } catch {
                printer.message("warning: the sandbox's exit cannot be watched: \(error)")
            }
        } else {
            printer.message("pod \(pod.spec.name): its sandbox exited while podshim was down")
        }
        let sink: LineSink = { [printer] in printer.containerLine($0, $1, $2) }
        for container in pod.containers {
            let name = container.name
            container.adoptAttempt(pod.latestAttempt(of: name))
            let kept = record.keeperFDs?[name] ?? []
            guard let identity = record.containers[name] else {
                // Never cloned: the previous daemon died while setting the pod up.
                guard pause != nil else { continue }
                do {
                    try launcher.start(container, in: pod, sink: sink)
                    supervisor.started(container)
                    printer.message("container \(name) started: pid \(container.process?.pid ?? 0)")
                } catch {
                    printer.message(error.description)
                }
                continue
            }
            if let process = Adoption.reopen(identity) {
                pod.adoptStarted(container, process: process, keeperFDs: kept)
                do {
                    try Adoption.watch(process, identity: identity) { status in
                        container.markExitObserved(at: MonotonicInstant.now())
                        events.post(.containerExited(name: name, status: status ?? .exited(code: 255)))
                    }
                } catch {
                    printer.message("warning: container \(name): its exit cannot be watched: \(error)")
                }
                supervisor.started(container)
                printer.message("container \(name) re-adopted: pid \(process.pid)"
                    + (container.outputLog == nil ? " (its output pipes could not be reopened: not logged)" : ""))
                continue
            }
            var status: ExitStatus?
            var handle = ProcessHandle?.none
            if let pause, let keeper = pod.keeper, let number = kept.first,
               let found = Adoption.keptExit(number: number, identity: identity, pause: pause, keeper: keeper) {
                handle = found.handle
                status = found.status
            }
            if let handle {
                pod.adoptStarted(container, process: handle, keeperFDs: kept)
            } else {
                container.markCloned()
            }
            supervisor.started(container)
            printer.message("container \(name) exited while podshim was down: "
                + (status.map { "\($0)" } ?? "its exit status was not kept (reported as 255)"))
            container.markExitObserved(at: MonotonicInstant.now())
            events.post(.containerExited(name: name, status: status ?? .exited(code: 255)))
        }
        if pause == nil { events.post(.sandboxExited(.exited(code: 255))) }
    }

    private func runningOwner() -> Int32? {
        // Unreadable (written by rename, so never torn; a foreign file): no live owner to refuse for.
        guard let record = PodStateRecord.load(pod.layout.stateFile), record.owner.isAlive else { return nil }
        return record.owner.pid
    }

    /// The pod's event loop: exits, probe results, restarts and stop requests, until every
    /// container has exited for good. Kill deadlines are kept by the ``Termination``'s timer
    /// thread; probe and restart times are the loop's own wake-ups.
    private func waitForContainers() async {
        let sink: LineSink = { [printer] in printer.containerLine($0, $1, $2) }
        var phase = currentPhase()
        printer.message("pod phase: \(phase.rawValue)")
        takeSnapshot(finished: false)
        while pod.containers.contains(where: \.isAwaitingExit) || supervisor.hasPendingRestarts {
            let event = await pod.events.next(until: supervisor.nextWakeUp)
            switch event {
            case nil:
                break
            case .containerExited(let name, let status)?:
                termination.exited(name)
                guard let container = pod.container(named: name) else { break }
                container.markExited(status)
                if stopRequests == 0, let termination = container.termination {
                    supervisor.exited(container, termination: termination)
                }
            case .probeFinished(let name, let kind, let success, let detail)?:
                guard stopRequests == 0, let container = pod.container(named: name) else { break }
                supervisor.probeFinished(container, kind: kind, success: success, detail: detail)
            case .execExited?:
                break
            case .sandboxExited(let status)?:
                printer.message("sandbox exited unexpectedly (\(status)): stopping the pod")
                supervisor.cancelRestarts()
                killAll()
            case .stopRequested?:
                supervisor.terminating()
                requestStop(reason: "stop requested")
            }
            if stopRequests == 0 && supervisor.hasWorkDue {
                await offload { [self] in supervisor.runDue(sink: sink) } // restarts spawn
            }
            let now = currentPhase()
            if now != phase {
                printer.message("pod phase: \(now.rawValue)")
                phase = now
            }
            takeSnapshot(finished: false)
        }
        if currentPhase() != phase { printer.message("pod phase: \(currentPhase().rawValue)") }
    }

    private func takeSnapshot(finished: Bool) {
        let containers = pod.containers.map { container -> PodStatusSnapshot.ContainerStatus in
            var status = PodStatusSnapshot.ContainerStatus(
                name: container.name, state: "Waiting", reason: "ContainerCreating", message: "", exitCode: 0,
                startedAt: container.startedAtWall ?? 0, finishedAt: 0, restartCount: container.restartCount,
                ready: supervisor.isReady(container.name))
            switch container.state {
            case .created:
                if supervisor.isRestartPending(container.name) { status.reason = "CrashLoopBackOff" }
            case .running:
                status.state = "Running"
                status.reason = ""
            case .exited(let termination):
                if supervisor.isRestartPending(container.name) && !finished {
                    status.reason = "CrashLoopBackOff"
                } else {
                    status.state = "Terminated"
                    status.reason = termination.reason
                }
                status.exitCode = termination.exitCode
                status.message = termination.message ?? ""
                status.finishedAt = container.finishedAtWall ?? 0
            }
            return status
        }
        let current = PodStatusSnapshot(phase: currentPhase(), ready: supervisor.isPodReady, containers: containers,
                                        finished: finished)
        snapshotLock.withLock { snapshot = current }
    }

    private func currentPhase() -> PodPhase {
        PodPhase.of(pod.containers.map { container in
            switch container.state {
            case .created: return supervisor.isRestartPending(container.name) ? .running : .waiting
            case .running: return .running
            case .exited(let termination):
                let again = stopRequests == 0 && PodPhase.restarts(pod.spec.restartPolicy, exitCode: termination.exitCode)
                return .terminated(exitCode: termination.exitCode, willRestart: again)
            }
        })
    }

    /// The first request runs the graceful flow (preStop, stop signal, SIGKILL at the deadline);
    /// a second one forces.
    private func requestStop(reason: String) {
        stopRequests += 1
        let grace = snapshotLock.withLock { requestedGrace } ?? pod.spec.terminationGracePeriodSeconds
        if stopRequests > 1 || grace == 0 {
            printer.message("\(reason): killing the pod now")
            killAll()
            return
        }
        printer.message("\(reason): pod terminating (preStop hooks, stop signal, SIGKILL after \(grace)s; interrupt again to kill now)")
        termination.begin(pod.containers, graceSeconds: grace)
    }

    private func killAll() {
        termination.begin(pod.containers, graceSeconds: 0)
        for container in pod.containers { container.kill() }
    }

    /// Kills the sandbox, waits for it, detaches the pod from the network (CNI DEL), removes every
    /// mount and directory of the pod.
    private func tearDown() async -> [PodError] {
        if pod.sandbox != nil {
            launcher.killSandbox(of: pod)
            let deadline = pod.events.clock.now().advanced(bySeconds: 10)
            waitLoop: while let event = await pod.events.next(until: deadline) {
                if case .sandboxExited = event { break waitLoop }
            }
        }
        return await offload { [self] in
            var problems: [PodError] = []
            if let network {
                do {
                    try network.detach(podID: pod.layout.podID)
                } catch {
                    problems.append(PodError("pod \(pod.spec.name) network", error))
                }
            }
            return problems + pod.removeResources()
        }
    }
}
