import Foundation
import GRPCCore
import PodshimCRI
import PodshimRuntime
import PodshimSpec
import PodshimSystem
import PodshimProcess

/// After a restart (clean or SIGKILL), the daemon rebuilds its sandboxes and containers from the
/// records: a process is re-adopted only when its PID *and* start time match the record, and the
/// pidfd opened for it is checked again afterwards (a recycled PID has another start time). A
/// process that vanished meanwhile is reported exited with reason `Unknown`.
extension SandboxManager {
    /// Returns one line per notable finding, for the log.
    func readopt() -> [String] {
        var report: [String] = []
        let (sandboxRecords, sandboxProblems) = store.loadSandboxes()
        let (containerRecords, containerProblems) = store.loadContainers()
        report += sandboxProblems + containerProblems
        var containersBySandbox: [String: [ContainerRecord]] = [:]
        for record in containerRecords { containersBySandbox[record.sandboxID, default: []].append(record) }

        for var record in sandboxRecords {
            guard let config = try? Runtime_V1_PodSandboxConfig(jsonString: record.config), // reported just below
                  let spec = try? CRITranslation.pod(config) else { // reported just below
                report.append("sandbox \(record.id): unreadable config, record left in place")
                continue
            }
            let layout = PodLayout(pod: spec, podID: record.id, configuration: configuration,
                                   logDirectory: config.logDirectory.isEmpty ? nil : config.logDirectory)
            let parent: Pod.CgroupParent?
            do {
                parent = try cgroupParent(config, sandboxID: record.id)
            } catch {
                // E.g. restarted with another --cgroup-driver: the pod's cgroups are then taken as podshim's own.
                parent = nil
                report.append("sandbox \(record.id.prefix(13)): cgroup parent \"\(config.linux.cgroupParent)\" no longer valid (\(error)), "
                    + "its cgroups are handled as podshim's own")
            }
            let pod = Pod(spec: spec, layout: layout, configuration: configuration, plans: [],
                          cgroupHierarchy: hierarchy, privileged: config.linux.securityContext.privileged, daemon: true,
                          cgroupParent: parent)
            let containerRecords = containersBySandbox[record.id] ?? []
            // The pod's own record names processes and kept fds only an interrupted operation needs.
            let interrupted = record.creating == true || containerRecords.contains { $0.starting == true }
            let podRecord = interrupted ? PodStateRecord.load(layout.stateFile) : nil
            if record.creating == true {
                report.append(rollBackInterruptedRun(record, pod: pod, podRecord: podRecord, containers: containerRecords))
                continue
            }
            let pause = record.pause.flatMap(Adoption.reopen)
            pod.adoptSandbox(pause, cgroupPath: record.cgroup)
            // Its hostPorts are taken again (a new pod asking for one of them is refused).
            _ = network?.restore(podID: record.id, pod: "\(spec.namespace)/\(spec.name)")
            if pause == nil && record.ready {
                record.ready = false
                save(record)
                report.append("sandbox \(record.id.prefix(13)): pause process is gone, sandbox not ready")
            }
            let sandbox = ManagedSandbox(record: record, config: config, pod: pod)
            if pause == nil { sandbox.pauseExited.fire() }
            /// Containers that exited while podshim was down, with what the pause process kept.
            var exitedWhileDown: [(container: ManagedContainer, status: ExitStatus?, finishedAt: Int64?)] = []

            for var containerRecord in containerRecords.sorted(by: { $0.createdAt < $1.createdAt }) {
                guard let containerConfig = try? Runtime_V1_ContainerConfig(jsonString: containerRecord.config) else { // reported just below
                    report.append("container \(containerRecord.id): unreadable config, record left in place")
                    continue
                }
                let interruptedStart = containerRecord.starting == true
                if interruptedStart {
                    report.append(finishInterruptedStart(&containerRecord, pod: pod,
                                                         identity: containerRecord.process ?? podRecord?.containers[containerRecord.id],
                                                         kept: podRecord?.keeperFDs?[containerRecord.id]))
                }
                var process: ProcessHandle?
                var kept: (handle: ProcessHandle, status: ExitStatus?, finishedAt: Int64?)?
                if containerRecord.state == .running {
                    process = containerRecord.process.flatMap(Adoption.reopen)
                    if process == nil {
                        kept = keptExit(of: containerRecord, pod: pod, pause: pause)
                    }
                    if process == nil && kept == nil {
                        containerRecord.state = .exited
                        containerRecord.finishedAt = nowNanoseconds()
                        containerRecord.exitCode = 255
                        containerRecord.reason = "Unknown"
                        containerRecord.message = "the container exited while podshim was not running"
                        save(containerRecord)
                        report.append("container \(containerRecord.id.prefix(13)): exited while podshim was down (Unknown)")
                    }
                }
                let planned: PlannedContainer?
                do {
                    planned = try planContainer(containerConfig, id: containerRecord.id, in: sandbox)
                } catch {
                    planned = nil
                    report.append("container \(containerRecord.id.prefix(13)): cannot be planned again (\(error)), "
                        + "kept with a placeholder spec (enough to stop and remove it)")
                }
                let plan = planned?.plan ?? ProcessPlan(argv: containerConfig.command.isEmpty ? ["/bin/true"] : containerConfig.command)
                let spec = planned?.addition.container
                    ?? PodshimSpecContainer.placeholder(name: containerRecord.id, image: containerRecord.image)
                let runtime = pod.adopt(spec, plan: plan, resources: planned?.resources ?? .init(),
                                        logPath: containerRecord.logPath, process: process ?? kept?.handle,
                                        kept: containerRecord.keeperFDs ?? [])
                if let process, containerRecord.keeperFDs == nil, let keeper = pod.keeper {
                    // Adopted without anything kept (its start was interrupted before the pause
                    // process took its fds): hand them over now, so its exit survives the next crash.
                    do {
                        let numbers = try keeper.hold(Pod.keptDescriptors(process: process, output: runtime.outputLog, input: runtime.input), watchMask: 1)
                        containerRecord.keeperFDs = numbers
                        runtime.keeperFDs = numbers
                        save(containerRecord)
                    } catch {
                        report.append("container \(containerRecord.id.prefix(13)): its pause process cannot hold its pidfd (\(error)): "
                            + "its exit status would not survive another crash of podshim")
                    }
                }
                if containerRecord.state == .created {
                    do {
                        // Rolled back: its next start must not be born in a cgroup that had cgroup.kill.
                        if interruptedStart { try pod.renewCgroup(of: runtime) }
                        // Recorded first, then made: a CreateContainer the daemon did not finish.
                        try pod.completeCreation(of: runtime)
                    } catch {
                        report.append("container \(containerRecord.id.prefix(13)): cannot complete its creation: \(error)")
                    }
                }
                let container = ManagedContainer(record: containerRecord, config: containerConfig, runtime: runtime)
                sandbox.containers.append(container)
                if let kept {
                    exitedWhileDown.append((container, kept.status, kept.finishedAt))
                    report.append("container \(containerRecord.id.prefix(13)): exited while podshim was down ("
                        + (kept.status.map { "\($0)" } ?? "status unknown") + "), as its pause process kept it")
                }
                if let process {
                    watchAdopted(process, container: container, in: sandbox)
                    report.append("container \(containerRecord.id.prefix(13)): re-adopted, pid \(process.pid)")
                    if runtime.outputLog == nil {
                        report.append("container \(containerRecord.id.prefix(13)): its output pipes could not be reopened, "
                            + "its output is no longer logged")
                    }
                }
            }
            watchTermination(of: sandbox)
            register(sandbox)
            startEventTask(sandbox)
            for exited in exitedWhileDown {
                containerExited(exited.container.id, status: exited.status, in: sandbox,
                                message: "the container exited while podshim was not running; the kernel kept no exit status",
                                finishedAt: exited.finishedAt)
            }
            resumeStops(in: sandbox, report: &report)
            if let pause {
                watchAdoptedPause(pause, sandbox: sandbox)
                report.append("sandbox \(record.id.prefix(13)) \(spec.namespace)/\(spec.name): re-adopted, pause pid \(pause.pid)")
            }
        }
        let known = Set(sandboxRecords.map(\.id))
        for record in containerRecords where !known.contains(record.sandboxID) {
            store.deleteContainer(record.id)
            report.append("container \(record.id.prefix(13)): its sandbox is gone, record removed")
        }
        return report
    }

    /// Stops that were under way when the daemon died are run again with their full grace period,
    /// as the kubelet retries a termination after a restart; a sandbox stop is finished.
    private func resumeStops(in sandbox: ManagedSandbox, report: inout [String]) {
        let (stopping, containers) = sandbox.lock.withLock {
            (sandbox.record.stopping == true,
             sandbox.containers.filter { $0.record.state == .running && $0.record.stopGraceSeconds != nil })
        }
        for container in containers {
            let grace = sandbox.lock.withLock { container.record.stopGraceSeconds ?? 0 }
            report.append("container \(container.id.prefix(13)): stop was under way, resumed with the full grace period (\(grace) s)")
            Task { await self.stop(container, in: sandbox, timeoutSeconds: grace) }
        }
        if stopping {
            report.append("sandbox \(sandbox.id.prefix(13)): stop was under way, finished")
            Task { await self.stopPodSandbox(sandbox) }
        }
    }

    /// Network attachments of pods that no longer exist (removed while podshim was down, or an
    /// interrupted RunPodSandbox whose DEL failed): DEL, so no IP or rule leaks. A pod is live
    /// while it has a state directory (CRI sandboxes, pod service pods, `podshim run` pods of the
    /// same state directory); call after every kind has been re-adopted.
    func collectNetworkGarbage() -> [String] {
        guard let network else { return [] }
        let podsDirectory = configuration.stateDirectory + "/pods"
        // No pods directory: no pod is live.
        let live = Set((try? FileManager.default.contentsOfDirectory(atPath: podsDirectory)) ?? []).union(allSandboxes.map(\.id))
        return network.collectGarbage(live: live)
    }

    /// A RunPodSandbox the daemon did not finish is undone: its pause process (found through the
    /// pod's own record, written when it was cloned) is killed, its cgroups, /dev/shm mount and
    /// directories removed (killing anything left in the cgroups), and its records deleted.
    private func rollBackInterruptedRun(_ record: SandboxRecord, pod: Pod, podRecord: PodStateRecord?,
                                        containers: [ContainerRecord]) -> String {
        let pause = podRecord?.sandbox.flatMap(Adoption.reopen)
        pod.adoptSandbox(pause, cgroupPath: podRecord?.cgroup ?? record.cgroup)
        var networkProblem: String?
        if let network {
            do {
                try network.detach(podID: record.id) // an ADD under way or done: DEL (nothing cached: nothing to do)
            } catch {
                networkProblem = "its network could not be released (retried at the next start-up): \(error)"
            }
        }
        pod.killSandbox()
        let problems = pod.removeResources().map(\.description) + (networkProblem.map { [$0] } ?? [])
        for container in containers { store.deleteContainer(container.id) }
        store.deleteSandbox(record.id)
        let name = record.id.prefix(13)
        if problems.isEmpty {
            return "sandbox \(name): RunPodSandbox was interrupted: rolled back" + (pause.map { " (pause pid \($0.pid) killed)" } ?? "")
        }
        return "sandbox \(name): RunPodSandbox was interrupted: rolled back, but " + problems.joined(separator: "; ")
    }

    /// A StartContainer the daemon did not finish: completed when the process runs (adopted as
    /// running), else rolled back — anything left in the container's cgroup is killed, and the
    /// container is exited (it ran) or created again (nothing was started), never started twice.
    private func finishInterruptedStart(_ record: inout ContainerRecord, pod: Pod, identity: ProcessIdentity?,
                                        kept: [Int32]?) -> String {
        record.starting = nil
        defer { save(record) }
        let name = record.id.prefix(13)
        if let identity, Adoption.reopen(identity) != nil || kept != nil {
            // It runs, or it ran and the pause process kept its pidfd: a started container, whose
            // exit (if any) the caller reads from the keeper as for any other.
            record.state = .running
            record.process = identity
            record.keeperFDs = kept ?? record.keeperFDs
            if record.startedAt == 0 { record.startedAt = nowNanoseconds() }
            return "container \(name): its start was under way, completed (pid \(identity.pid))"
        }
        if let cgroup = pod.cgroups?.container(record.id), cgroup.isPopulated {
            _ = try? cgroup.killAll() // best effort: a stray process of the interrupted start; removal kills again
        }
        if identity != nil {
            record.state = .exited
            record.finishedAt = nowNanoseconds()
            record.exitCode = 255
            record.reason = "Unknown"
            record.message = "the container exited while podshim was down, during its start"
            return "container \(name): its start was under way and it has exited since (Unknown)"
        }
        record.state = .created
        return "container \(name): its start was under way and nothing runs: rolled back to created"
    }

    /// What the pod's pause process kept of a container that exited while podshim was down.
    private func keptExit(of record: ContainerRecord, pod: Pod, pause: ProcessHandle?)
        -> (handle: ProcessHandle, status: ExitStatus?, finishedAt: Int64?)? {
        guard let pause, let keeper = pod.keeper, let number = record.keeperFDs?.first, let identity = record.process else { return nil }
        return Adoption.keptExit(number: number, identity: identity, pause: pause, keeper: keeper)
    }

    /// An adopted process is not our child: its exit arrives on its pidfd.
    func watchAdopted(_ process: ProcessHandle, container: ManagedContainer, in sandbox: ManagedSandbox) {
        let identity = sandbox.lock.withLock { container.record.process }
        watch(process, identity: identity) { [weak self] status in
            self?.containerExited(container.id, status: status, in: sandbox,
                                  message: "the container was re-adopted after a restart of podshim; the kernel did not report its exit status")
        }
    }

    func watchAdoptedPause(_ process: ProcessHandle, sandbox: ManagedSandbox) {
        watch(process, identity: sandbox.lock.withLock { sandbox.record.pause }) { [weak self] status in
            self?.pauseExited(sandbox, status: status)
        }
    }

    private func watch(_ process: ProcessHandle, identity: ProcessIdentity?, onExit: @escaping @Sendable (ExitStatus?) -> Void) {
        do {
            try Adoption.watch(process, identity: identity, onExit: onExit)
        } catch {
            logger.error("cannot watch pid \(process.pid): \(error)")
        }
    }
}

/// A container spec for a record whose config can no longer be planned (its image is gone):
/// enough to stop and remove it.
enum PodshimSpecContainer {
    static func placeholder(name: String, image: String) -> PodshimSpec.ContainerSpec {
        PodshimSpec.ContainerSpec(name: name, image: image)
    }
}
