import Foundation
import Synchronization
import GRPCCore
import Logging
import PodshimCgroups
import PodshimCRI
import PodshimImages
import PodshimRuntime
import PodshimSecurity
import PodshimSpec
import PodshimSystem
import SwiftProtobuf
import PodshimProcess
import PodshimNetwork

/// The daemon's pods and containers: the CRI's operations on top of ``Pod``, with durable records.
/// Blocking methods: call them through ``offload(_:)``.
final class SandboxManager: Sendable {
    let configuration: RuntimeConfiguration
    let store: StateStore
    let events = EventHub<Runtime_V1_ContainerEventResponse>()
    let images: ImageStore
    let hierarchy: CgroupHierarchy?
    let logger: Logger
    /// Starts and kills pause processes and containers (``PodLauncher``; a fake in unit tests).
    let launcher: any Launcher
    /// Pod networking through CNI; nil with `--network none` (loopback-only pods).
    let network: CNIManager?
    private struct Table {
        var sandboxes: [String: ManagedSandbox] = [:]
        /// Names being created right now (name/namespace/uid/attempt), so two racing RunPodSandbox
        /// calls cannot both pass the duplicate check.
        var reservedNames: Set<String> = []
    }

    /// The sandboxes by id; each sandbox's own state is under its own lock.
    private let table = Mutex(Table())
    /// Compiled seccomp programs, shared by every container.
    let seccomp = SeccompCache()
    /// Returns the heap a burst of pod removals freed to the kernel, once the burst is over.
    let memory = MemoryTrimmer()

    init(configuration: RuntimeConfiguration, hierarchy: CgroupHierarchy?, logger: Logger,
         launcher: any Launcher = PodLauncher()) {
        self.launcher = launcher
        self.configuration = configuration
        self.hierarchy = hierarchy
        self.logger = logger
        network = configuration.cniManager()
        store = StateStore(stateDirectory: configuration.stateDirectory)
        images = ImageStore(directory: configuration.imageDirectory)
        network?.podCIDR = podCIDR // as the kubelet last set it
    }

    // MARK: - Lookup

    var allSandboxes: [ManagedSandbox] { table.withLock { Array($0.sandboxes.values) } }

    /// By full id or unique prefix.
    func sandbox(_ id: String, field: String = "pod_sandbox_id") throws(PodshimError) -> ManagedSandbox {
        _ = try RequestCheck.id(id, field: field)
        return try RequestCheck.unique(id, in: allSandboxes, id: \.id, kind: "pod sandbox", kinds: "sandboxes", field: field)
    }

    /// A container and its sandbox, by full id or unique prefix.
    func container(_ id: String, field: String = "container_id") throws(PodshimError) -> (ManagedSandbox, ManagedContainer) {
        _ = try RequestCheck.id(id, field: field)
        let all = allSandboxes.flatMap { sandbox in sandbox.lock.withLock { sandbox.containers.map { (sandbox, $0) } } }
        return try RequestCheck.unique(id, in: all, id: { $0.1.id }, kind: "container", kinds: "containers", field: field)
    }

    // MARK: - Sandboxes

    func runPodSandbox(_ config: Runtime_V1_PodSandboxConfig) throws(PodshimError) -> String {
        let spec = try CRITranslation.pod(config)
        let metadata = config.metadata
        let key = "\(metadata.namespace)/\(metadata.name)/\(metadata.uid)/\(metadata.attempt)"
        try table.withLock { (table: inout Table) throws(PodshimError) in
            let existing = table.sandboxes.values.first {
                let other = $0.config.metadata
                return other.name == metadata.name && other.namespace == metadata.namespace
                    && other.uid == metadata.uid && other.attempt == metadata.attempt
            }
            if let existing {
                throw CRIError.alreadyExists("pod sandbox \(metadata.namespace)/\(metadata.name) (uid \(metadata.uid), "
                    + "attempt \(metadata.attempt)) already exists as \(existing.id)")
            }
            guard table.reservedNames.insert(key).inserted else {
                throw CRIError.alreadyExists("pod sandbox \(metadata.namespace)/\(metadata.name) is being created")
            }
        }
        defer { _ = table.withLock { $0.reservedNames.remove(key) } }

        let id = newIdentifier()
        let parent = try cgroupParent(config, sandboxID: id)
        let layout = PodLayout(pod: spec, podID: id, configuration: configuration,
                               logDirectory: config.logDirectory.isEmpty ? nil : config.logDirectory)
        let privileged = config.linux.securityContext.privileged
        let pod = Pod(spec: spec, layout: layout, configuration: configuration, plans: [],
                      cgroupHierarchy: hierarchy, privileged: privileged, daemon: true, cgroupParent: parent)
        // jsonString() cannot throw here: the CRI messages hold no Any, Timestamp, Duration or Value fields.
        var record = SandboxRecord(id: id, config: (try? config.jsonString()) ?? "{}", createdAt: nowNanoseconds(),
                                   ready: false, creating: true)
        do {
            try store.save(record) // first, so that a crash from here on leaves something to roll back
            try pod.prepare()
            Failpoint.hit("run-pod-sandbox/prepared")
            try launcher.startSandbox(of: pod)
            Failpoint.hit("run-pod-sandbox/started")
            if let network, !spec.hostNetwork, let pause = pod.sandbox {
                // The record says `creating`: a crash from here on is rolled back with a DEL.
                let attachment = try network.attach(Self.networkRequest(config, id: id, cgroup: pod.cgroups?.pod.path),
                                                    pausePID: pause.pid)
                record.ips = attachment.ips
                try pod.writeHosts(ips: attachment.ips)
                Failpoint.hit("run-pod-sandbox/networked")
            }
        } catch {
            logger.error("RunPodSandbox \(metadata.namespace)/\(metadata.name) failed: \(error)")
            if let network {
                for problem in network.takeProblems() { logger.warning("RunPodSandbox \(metadata.namespace)/\(metadata.name): \(problem)") }
                do {
                    try network.detach(podID: id)
                } catch {
                    logger.error("RunPodSandbox \(metadata.namespace)/\(metadata.name): network left for the next start-up to release: \(error)")
                }
            }
            launcher.killSandbox(of: pod)
            _ = pod.events.nextBlocking(until: pod.events.clock.now().advanced(bySeconds: 5)) // on a Dispatch worker (offloaded)
            for problem in pod.removeResources() { logger.warning("cleanup of failed sandbox \(id): \(problem)") }
            store.deleteSandbox(id)
            let failure = PodshimError.from(error)
            throw PodshimError(failure.code == .notFound ? .internal : failure.code, operation: "run pod sandbox",
                               subject: "\(metadata.namespace)/\(metadata.name)", errno: failure.errno, message: failure.description)
        }
        record.pause = pod.sandbox.flatMap { ProcessIdentity.of(pid: $0.pid) }
        record.cgroup = pod.cgroups?.pod.path
        record.ready = true
        record.creating = nil
        save(record)
        let sandbox = ManagedSandbox(record: record, config: config, pod: pod)
        watchTermination(of: sandbox)
        // The event task exists before anyone can look the sandbox up (and remove it).
        startEventTask(sandbox)
        table.withLock { $0.sandboxes[id] = sandbox }
        logger.info("sandbox \(id.prefix(13)) \(metadata.namespace)/\(metadata.name) ready, pause pid \(pod.sandbox?.pid ?? 0)")
        return id
    }

    /// What CNI is told about the pod: its names (CNI_ARGS), hostPorts (portMappings: those with a
    /// host port, protocol in lower case, as containerd passes them) and cgroup.
    static func networkRequest(_ config: Runtime_V1_PodSandboxConfig, id: String, cgroup: String?) -> PodNetworkRequest {
        let mappings = config.portMappings.filter { $0.hostPort > 0 }.map { mapping in
            PortMapping(hostPort: Int(mapping.hostPort), containerPort: Int(mapping.containerPort),
                        protocol: mapping.protocol == .udp ? "udp" : mapping.protocol == .sctp ? "sctp" : "tcp",
                        hostIP: mapping.hostIp)
        }
        return PodNetworkRequest(podID: id, namespace: config.metadata.namespace, name: config.metadata.name,
                                 uid: config.metadata.uid, portMappings: mappings, cgroupPath: cgroup)
    }

    /// NetworkReady as Status reports it: CNI's default network loaded and its plugins found.
    var networkCondition: (ready: Bool, reason: String, message: String) {
        guard let network else {
            return (true, "NetworkingOff", "podshim runs with --network none: each pod gets its own network namespace with only loopback up")
        }
        switch network.network() {
        case .success(let list):
            return (true, "", "CNI network \(list.name) from \(list.file) (plugins \(list.types.joined(separator: ", ")))")
        case .failure(let error):
            return (false, "NetworkPluginNotReady", "cni plugin not initialized: \(error)")
        }
    }

    /// Where the sandbox's cgroups go: under the kubelet's `cgroup_parent` (in the form of the
    /// configured driver), with the sandbox's resources plus overhead on it; nil = podshim's own.
    func cgroupParent(_ config: Runtime_V1_PodSandboxConfig, sandboxID: String) throws(PodshimError) -> Pod.CgroupParent? {
        let linux = config.linux
        guard !linux.cgroupParent.isEmpty, let hierarchy else { return nil }
        let systemd = configuration.cgroupDriver == .systemd
        guard let relative = PodCgroups.parentPath(linux.cgroupParent, systemd: systemd) else {
            throw CRIError.invalidArgument("config.linux.cgroup_parent", "\"\(linux.cgroupParent)\" is not "
                + (systemd ? "a systemd slice name (kubepods-burstable-pod<uid>.slice); podshim runs with --cgroup-driver systemd"
                           : "an absolute cgroupfs path (/kubepods/burstable/pod<uid>); podshim runs with --cgroup-driver cgroupfs"))
        }
        var resources: CgroupResources?
        if linux.hasResources || linux.hasOverhead {
            var total = try CRITranslation.cgroupResources(linux.resources, field: "config.linux.resources")
            let overhead = try CRITranslation.cgroupResources(linux.overhead, field: "config.linux.overhead")
            total.add(overhead)
            resources = total
        }
        return Pod.CgroupParent(path: hierarchy.mountPoint + relative,
                                naming: .kubelet(sandboxID: sandboxID, systemd: systemd), resources: resources)
    }

    /// Stops every container (at once, as containerd does: the kubelet has already given them their
    /// grace period) and the pause process, then detaches the pod from the network (CNI DEL).
    /// Idempotent. Returns the DEL's failure: the kubelet retries the stop.
    @discardableResult
    func stopPodSandbox(_ sandbox: ManagedSandbox) async -> PodshimError? {
        let containers: [ManagedContainer] = sandbox.lock.withLock {
            if sandbox.record.stopping != true && sandbox.record.ready {
                // Terminating: out of readiness at once, and recorded so a restart finishes it.
                sandbox.record.stopping = true
                sandbox.record.ready = false
                save(sandbox.record)
            }
            return sandbox.containers
        }
        await withTaskGroup(of: Void.self) { group in
            for container in containers {
                group.addTask { await self.stop(container, in: sandbox, timeoutSeconds: 0) }
            }
        }
        let running = sandbox.lock.withLock { sandbox.pod.sandbox != nil && !sandbox.pauseExited.hasFired }
        if running {
            launcher.killSandbox(of: sandbox.pod)
            if !(await sandbox.pauseExited.wait(seconds: 10)) {
                logger.warning("sandbox \(sandbox.id.prefix(13)): pause did not exit 10 s after SIGKILL")
            }
        }
        sandbox.lock.withLock {
            if sandbox.record.ready {
                sandbox.record.ready = false
                save(sandbox.record)
            }
        }
        guard let network, !sandbox.pod.spec.hostNetwork else { return nil }
        let id = sandbox.id
        let failure: PodshimError? = await offload { () -> PodshimError? in
            do throws(PodshimError) {
                try network.detach(podID: id)
                return nil
            } catch {
                return error
            }
        }
        if let failure { logger.error("sandbox \(id.prefix(13)): \(failure)") }
        return failure
    }

    /// Stops the sandbox, removes its containers, cgroups, mounts and directories. Idempotent.
    func removePodSandbox(_ sandbox: ManagedSandbox) async throws(PodshimError) {
        // A DEL that failed at stop is tried again; still failing, the sandbox stays for a retry.
        if let failure = await stopPodSandbox(sandbox) { throw failure }
        let containers = sandbox.lock.withLock { sandbox.containers }
        for container in containers {
            try await removeContainer(container, in: sandbox)
        }
        let problems = await offload { sandbox.pod.removeResources() }
        if !problems.isEmpty {
            // Keep the sandbox (listed, recorded): the kubelet retries RemovePodSandbox.
            let text = problems.map(\.description).joined(separator: "; ")
            logger.error("remove sandbox \(sandbox.id.prefix(13)): \(text)")
            throw CRIError.internal("remove pod sandbox \(sandbox.id): \(text)")
        }
        let eventTask = sandbox.lock.withLock {
            sandbox.removed = true
            return sandbox.eventTask
        }
        eventTask?.cancel() // ends its event task
        store.deleteSandbox(sandbox.id)
        _ = table.withLock { $0.sandboxes.removeValue(forKey: sandbox.id) }
        logger.info("sandbox \(sandbox.id.prefix(13)) removed")
        memory.released()
    }

    // MARK: - Containers

    /// A container config planned against its sandbox, ready to be added to the pod.
    struct PlannedContainer {
        var addition: CRITranslation.ContainerAddition
        var plan: ProcessPlan
        var resources: CgroupResources
        var imageRef: String
        /// The image's layers (ChainIDs), leased for as long as the container exists.
        var layers: [String] = []
        /// The image's first reference and repository digest, fully qualified.
        var repoTag: String?
        var repoDigest: String?
    }

    /// Translates and plans `config` as container `id` of `sandbox` — the same planner, seccomp
    /// compilation and cgroup mapping as `podshim run`. Used at creation and at re-adoption.
    func planContainer(_ config: Runtime_V1_ContainerConfig, id: String, in sandbox: ManagedSandbox) throws(PodshimError) -> PlannedContainer {
        let imageName = config.image.image
        // The kubelet names the image by the id PullImage returned; people by tag or path.
        let image: (rootfs: String, record: ImageRecord?)
        do {
            image = try images.resolveStored(imageName)
        } catch {
            if case .hostPath = error { throw CRIError.invalidArgument("config.image.image", error.description) }
            throw PodshimError(.notFound, subject: "config.image.image", message: "\(error)")
        }
        let rootfs = image.rootfs
        var defaults = image.record.map { ImageDefaults($0.config) } ?? ImageDefaults()
        defaults.users = ImageUsers(passwd: Self.imageFile(rootfs, "etc/passwd"), group: Self.imageFile(rootfs, "etc/group"))
        let imageRef = image.record?.id ?? imageName
        let addition = try CRITranslation.container(config, key: id, image: defaults)
        if config.linux.securityContext.privileged && !sandbox.pod.privilegedSandbox {
            throw CRIError.invalidArgument("config.linux.security_context.privileged",
                                           "a privileged container needs a privileged sandbox")
        }
        if case .target(let target)? = addition.container.pidNamespace {
            let running = sandbox.lock.withLock {
                sandbox.containers.first { $0.id == target }.map { $0.record.state == .running }
            }
            guard let running else {
                throw CRIError.invalidArgument("config.linux.security_context.namespace_options.target_id",
                                               "no container \(target) in pod sandbox \(sandbox.id)")
            }
            guard running else {
                throw CRIError.failedPrecondition("target container \(target) is not running: its PID namespace cannot be joined")
            }
        }
        for (index, mount) in addition.container.volumeMounts.enumerated() where mount.propagation != .none {
            let source = config.mounts[index].hostPath
            let field = "config.mounts[\(index)].propagation"
            guard let propagation = MountInfo.propagation(of: source) else {
                throw CRIError.failedPrecondition("\(field): cannot find the mount of \(source) in /proc/self/mountinfo")
            }
            switch (mount.propagation, propagation.shared, propagation.slave) {
            case (.bidirectional, false, _):
                throw CRIError.failedPrecondition("\(field): BIDIRECTIONAL needs \(source) on a shared mount, but \(propagation.mountPoint) is not shared (mount --make-rshared)")
            case (.hostToContainer, false, false):
                throw CRIError.failedPrecondition("\(field): HOST_TO_CONTAINER needs \(source) on a shared or slave mount, but \(propagation.mountPoint) is private (mount --make-rshared)")
            default:
                break
            }
        }
        var planning = sandbox.pod.spec
        // A CRI container gets its user, groups and profile from its own config only (the kubelet
        // sends them all); nothing is inherited from the sandbox's security context.
        planning.securityContext = PodSecurityContext()
        planning.containers.removeAll { $0.name == id }
        planning.volumes += addition.volumes
        planning.containers.append(addition.container)
        let index = planning.containers.count - 1
        let planner = ContainerPlanner(pod: planning, layout: sandbox.pod.layout)
        let fields = CRITranslation.containerFields(config)
        var plan: ProcessPlan
        do {
            plan = try planner.plan(containerAt: index, imageRootfs: rootfs, fields: fields)
            let capabilities = CapabilitySet(rawValue: plan.capabilities?.bounding ?? Capabilities.all.rawValue)
            plan.seccompFilter = try seccomp.filter(
                planner.seccompChoice(containerAt: index), capabilities: capabilities,
                configuration: configuration, field: fields.seccompProfile)
        } catch {
            throw CRIError.invalidArgument(error.path, error.message)
        }
        let resources = try CRITranslation.cgroupResources(config.linux.resources, field: "config.linux.resources")
        if !resources.unified.isEmpty {
            guard let leaf = sandbox.pod.cgroups?.sandbox else {
                throw CRIError.failedPrecondition("config.linux.resources.unified: this host has no cgroup v2 hierarchy")
            }
            if let problem = PodCgroups.checkUnified(Array(resources.unified.keys), against: leaf) {
                throw CRIError.invalidArgument("config.linux.resources.unified", problem)
            }
        }
        if config.linux.resources.oomScoreAdj != 0 { plan.oomScoreAdjust = Int32(config.linux.resources.oomScoreAdj) }
        return PlannedContainer(addition: addition, plan: plan, resources: resources, imageRef: imageRef,
                                layers: image.record?.layers ?? [],
                                repoTag: image.record?.repoTags.first.map(ImageServiceProvider.fullyQualified),
                                // Pulled images only: a digest from a registry (what containerd reports).
                                repoDigest: image.record.flatMap { $0.pulled ? $0.repoDigests.first : nil }
                                    .map(ImageServiceProvider.fullyQualified))
    }

    /// A small file of an image (/etc/passwd), read only when it resolves inside the image (an
    /// image's symlink must not make podshim read a host file).
    /// `path` of the image whose overlay lower directories are `rootfs` (`top:…:bottom`), or "".
    static func imageFile(_ rootfs: String, _ path: String) -> String {
        ImageStore.readImageFile(path, lowerDirectories: rootfs.split(separator: ":").map(String.init)) ?? ""
    }

    func createContainer(in sandbox: ManagedSandbox, config: Runtime_V1_ContainerConfig) throws(PodshimError) -> String {
        guard config.hasMetadata, !config.metadata.name.isEmpty else {
            throw CRIError.invalidArgument("config.metadata.name", "required")
        }
        let id = newIdentifier()
        let planned = try planContainer(config, id: id, in: sandbox)
        let logPath = try self.logPath(config.logPath, sandbox: sandbox)
        if !planned.layers.isEmpty {
            // The container's overlay stands on these layers: image garbage collection keeps them
            // until the container is gone (a stale lease is dropped by reconcileLayerLeases).
            do {
                try images.lease(id, layers: planned.layers)
            } catch {
                throw CRIError.internal("lease the image layers of \(config.metadata.name): \(error)")
            }
        }

        do {
            sandbox.lock.lock()
            defer { sandbox.lock.unlock() }
            guard sandbox.record.ready, !sandbox.removed else {
                throw CRIError.failedPrecondition("pod sandbox \(sandbox.id) is not ready")
            }
            if let existing = sandbox.containers.first(where: { $0.name == config.metadata.name && $0.attempt == config.metadata.attempt }) {
                throw CRIError.alreadyExists("container \(config.metadata.name) (attempt \(config.metadata.attempt)) "
                    + "already exists in pod sandbox \(sandbox.id) as \(existing.id)")
            }
            var record = ContainerRecord(
                // jsonString() cannot throw here: the CRI messages hold no Any, Timestamp, Duration or Value fields.
                id: id, sandboxID: sandbox.id, config: (try? config.jsonString()) ?? "{}", image: config.image.image,
                imageRef: planned.imageRef, imageRepoTag: planned.repoTag, imageRepoDigest: planned.repoDigest, logPath: logPath,
                state: .created, createdAt: nowNanoseconds())
            do {
                try store.save(record)
            } catch {
                throw CRIError.internal("save container record: \(error)")
            }
            let runtime: Container
            do {
                runtime = try sandbox.pod.add(planned.addition.container, volumes: planned.addition.volumes,
                                              plan: planned.plan, resources: planned.resources, logPath: logPath)
            } catch {
                store.deleteContainer(id)
                throw CRIError.internal("create container \(config.metadata.name): \(error)")
            }
            record.createdAt = nowNanoseconds()
            let container = ManagedContainer(record: record, config: config, runtime: runtime)
            sandbox.containers.append(container)
            publish(.containerCreatedEvent, container, sandbox)
            return id
        }
    }

    /// The log file: the sandbox's `log_directory` joined with the container's `log_path`.
    private func logPath(_ relative: String, sandbox: ManagedSandbox) throws(PodshimError) -> String {
        if relative.isEmpty { return sandbox.pod.layout.logDirectory + "/" + newIdentifier().prefix(12) + ".log" }
        if relative.hasPrefix("/") {
            throw CRIError.invalidArgument("config.log_path", "\"\(relative)\" is absolute: it must be relative to the sandbox's log_directory")
        }
        if relative.split(separator: "/").contains("..") || relative.contains("\0") || relative.hasSuffix("/") {
            throw CRIError.invalidArgument("config.log_path", "\"\(relative)\" must name a file inside the sandbox's log_directory")
        }
        return sandbox.pod.layout.logDirectory + "/" + relative
    }

    /// `received`: when the RPC arrived (the start profile's first stage is the hop to this thread).
    func startContainer(_ container: ManagedContainer, in sandbox: ManagedSandbox, received: MonotonicInstant = .now()) throws(PodshimError) {
        var profile = StartProfile(startingAt: received)
        profile.mark("daemon.dispatch")
        do {
            sandbox.lock.lock()
            defer { sandbox.lock.unlock() }
            profile.mark("daemon.lock")
            guard container.record.state == .created else {
                throw CRIError.failedPrecondition("container \(container.id) is \(container.record.state.rawValue), not created")
            }
            guard sandbox.record.ready else {
                throw CRIError.failedPrecondition("pod sandbox \(sandbox.id) is not ready")
            }
            // The intent first: a daemon killed from here on is completed or rolled back at start-up.
            container.record.starting = true
            save(container.record)
            profile.mark("daemon.record-intent")
            do {
                try launcher.start(container.runtime, in: sandbox.pod, sink: nil)
                Failpoint.hit("start-container/started")
                if let started = container.runtime.startProfile { profile.append(started, gap: "daemon.launch") }
            } catch {
                // The child reported and exits; its exit is processed as ContainerCannotRun by the event thread.
                container.record.message = error.description
                container.record.starting = nil
                save(container.record)
                throw CRIError.internal("start container \(container.id): \(error)")
            }
            container.record.starting = nil
            container.record.state = .running
            container.record.startedAt = nowNanoseconds()
            container.record.process = container.runtime.process.flatMap { ProcessIdentity.of(pid: $0.pid) }
            let kept = container.runtime.keeperFDs
            container.record.keeperFDs = kept.isEmpty ? nil : kept
            if kept.isEmpty && sandbox.pod.keeper != nil {
                logger.warning("container \(container.id.prefix(13)): the pause process could not hold its pidfd and pipes; its exit code and last output would not survive a crash of podshim")
            }
            save(container.record)
            profile.mark("daemon.record-running")
            publish(.containerStartedEvent, container, sandbox)
            profile.mark("daemon.event")
            container.startProfile = profile
        }
    }

    /// Closes a `stdin_once` container's stdin for good after its first attach session (podshim's
    /// writer and the pause process's copy; the record says so, so a restarted daemon does not take
    /// it back). Called from the streaming server's event loop: the record is written elsewhere.
    func closeStdin(of container: ManagedContainer, in sandbox: ManagedSandbox) {
        DispatchQueue.global().async { [self] in
            sandbox.lock.withLock {
                let kept = container.record.keeperFDs ?? []
                guard let updated = sandbox.pod.closeInput(of: container.runtime, kept: kept), !kept.isEmpty else { return }
                container.record.keeperFDs = updated
                container.runtime.keeperFDs = updated
                save(container.record)
            }
        }
    }

    /// The CRI's stop: the stop signal, `timeoutSeconds` to exit, then SIGKILL at the deadline
    /// (from the deadline thread, as `podshim run`); 0 kills at once. The grace period is recorded
    /// first, so a daemon restarted meanwhile stops the container again with the full grace.
    func stop(_ container: ManagedContainer, in sandbox: ManagedSandbox, timeoutSeconds: Int64) async {
        let running: Bool = sandbox.lock.withLock {
            guard container.record.state == .running else { return false }
            if container.record.stopGraceSeconds == nil || timeoutSeconds < (container.record.stopGraceSeconds ?? .max) {
                container.record.stopGraceSeconds = max(0, timeoutSeconds)
                container.record.stopRequestedAt = nowNanoseconds()
                container.record.message = "Terminating: \(container.runtime.stopSignal.name), SIGKILL after \(max(0, timeoutSeconds)) s"
                save(container.record)
            }
            container.signalSent = timeoutSeconds > 0 ? container.runtime.stopSignal : .kill
            return true
        }
        guard running else { return }
        sandbox.termination.begin([container.runtime], graceSeconds: timeoutSeconds, runPreStop: false)
        if await container.exited.wait(seconds: TerminationSchedule.clampedGrace(timeoutSeconds) + 10) { return }
        logger.warning("container \(container.id.prefix(13)) did not exit 10 s after its SIGKILL deadline")
        sandbox.lock.withLock { container.signalSent = .kill }
        container.runtime.kill()
        _ = await container.exited.wait(seconds: 10)
    }

    /// Drops the layer leases of containers that no longer exist (pulls' own leases are theirs to
    /// end); run before image garbage collection and at start-up, after re-adoption.
    func reconcileLayerLeases() {
        let known = Set(allSandboxes.flatMap { sandbox in sandbox.lock.withLock { sandbox.containers.map(\.id) } })
        for holder in images.leases().keys where !holder.hasPrefix(ImageStore.pullLeasePrefix) && !known.contains(holder) {
            images.release(holder)
        }
    }

    func removeContainer(_ container: ManagedContainer, in sandbox: ManagedSandbox) async throws(PodshimError) {
        await stop(container, in: sandbox, timeoutSeconds: 0)
        let problems = await offload {
            sandbox.lock.withLock { () -> [PodError] in
                guard sandbox.containers.contains(where: { $0 === container }) else { return [] }
                let problems = sandbox.pod.remove(container.runtime)
                Failpoint.hit("remove-container/removed")
                sandbox.pod.releaseKept(container.record.keeperFDs ?? [])
                sandbox.containers.removeAll { $0 === container }
                return problems
            }
        }
        store.deleteContainer(container.id)
        images.release(container.id)  // its layers may be collected now
        sandbox.lock.withLock { publish(.containerDeletedEvent, container, sandbox) }
        if !problems.isEmpty {
            throw CRIError.internal("remove container \(container.id): " + problems.map(\.description).joined(separator: "; "))
        }
    }

    /// UpdateContainerResources: the container's cgroup files rewritten live, and what is now in
    /// force kept for ContainerStatus.resources.
    func updateResources(_ container: ManagedContainer, in sandbox: ManagedSandbox,
                         _ resources: Runtime_V1_LinuxContainerResources) throws(PodshimError) {
        let translated = try CRITranslation.cgroupResources(resources, field: "linux")
        if let cgroup = container.runtime.cgroup {
            if !translated.unified.isEmpty, let problem = PodCgroups.checkUnified(Array(translated.unified.keys), against: cgroup) {
                throw CRIError.invalidArgument("linux.unified", problem)
            }
            do {
                try PodCgroups.update(cgroup, resources: translated)
            } catch {
                throw CRIError.internal("update resources of \(container.id): \(error)")
            }
        }
        if resources.oomScoreAdj != 0, let process = container.runtime.process {
            let path = "/proc/\(process.pid)/oom_score_adj"
            do {
                try FileSystem.writeFile(path, String(resources.oomScoreAdj))
            } catch {
                throw CRIError.internal("update oom_score_adj of \(container.id): \(error)")
            }
        }
        sandbox.lock.withLock {
            container.resources = resources
            container.record.resources = try? resources.jsonString() // cannot throw: no Any/Timestamp/Duration/Value in the CRI messages
            save(container.record)
        }
    }

    /// UpdatePodSandboxResources: the pod cgroup's files (best effort, as the kubelet treats it).
    func updatePodResources(_ sandbox: ManagedSandbox, resources: Runtime_V1_LinuxContainerResources,
                            overhead: Runtime_V1_LinuxContainerResources?) throws(PodshimError) {
        var total = try CRITranslation.cgroupResources(resources, field: "resources")
        if let overhead { total.add(try CRITranslation.cgroupResources(overhead, field: "overhead")) }
        guard let cgroups = sandbox.pod.cgroups else {
            throw CRIError.failedPrecondition("pod sandbox \(sandbox.id) has no cgroup on this host")
        }
        do {
            try cgroups.updatePod(total)
        } catch {
            throw CRIError.internal("update resources of pod sandbox \(sandbox.id): \(error)")
        }
    }

    // MARK: - Exits

    /// One task per sandbox (no thread) consumes its pod's events: exits of its containers and of
    /// its pause. It ends when the sandbox is removed (its task is cancelled).
    func startEventTask(_ sandbox: ManagedSandbox) {
        let task = Task.detached { [weak self] in
            while let event = await sandbox.pod.events.next(until: nil) {
                if sandbox.lock.withLock({ sandbox.removed }) { return }
                guard let manager = self else { return }
                // Recording an exit reads the cgroup and writes the record: a Dispatch worker's
                // job, not the cooperative pool's.
                switch event {
                case .containerExited(let name, let status):
                    await offload { manager.containerExited(name, status: status, in: sandbox) }
                case .sandboxExited(let status):
                    await offload { manager.pauseExited(sandbox, status: status) }
                case .stopRequested, .execExited, .probeFinished:
                    break
                }
            }
        }
        sandbox.lock.withLock { sandbox.eventTask = task }
    }

    /// A signal the kernel refused is logged and shown in the container's status message (never
    /// taken as sent).
    func watchTermination(of sandbox: ManagedSandbox) {
        sandbox.terminationEvents.set { [weak self, weak sandbox] event in
            guard let self, let sandbox, case .signalFailed(let name, let signal, let problem) = event else { return }
            self.logger.error("container \(name.prefix(13)): \(signal.name) could not be sent: \(problem)")
            sandbox.lock.withLock {
                guard let container = sandbox.container(name), container.record.state == .running else { return }
                container.record.message = "\(signal.name) could not be sent: \(problem)"
                self.save(container.record)
            }
        }
    }

    /// `status` nil: the process ended while podshim was not its parent and the kernel could not
    /// say how; the CRI reason is then `Unknown`.
    func containerExited(_ id: String, status: ExitStatus?, in sandbox: ManagedSandbox, message: String? = nil,
                         finishedAt: Int64? = nil) {
        let kept: [Int32] = sandbox.lock.withLock {
            guard let container = sandbox.container(id), container.record.state != .exited else { return [] }
            sandbox.termination.exited(id)
            var status = status
            var message = message
            if status == nil, let signal = container.signalSent {
                // A re-adopted process podshim itself signalled: that signal (or the SIGKILL at
                // the deadline) is what ended it.
                let killed = sandbox.termination.records.contains { $0.container == id }
                status = .signaled(killed ? .kill : signal, coreDumped: false)
                message = nil
            }
            container.runtime.markExited(status ?? .exited(code: 255))
            let termination = container.runtime.termination
            container.record.state = .exited
            container.record.finishedAt = finishedAt ?? nowNanoseconds()
            if container.record.message.hasPrefix("Terminating") { container.record.message = "" }
            container.record.exitCode = termination?.exitCode ?? 255
            if status == nil {
                container.record.reason = "Unknown"
                container.record.message = message ?? "the process ended while podshim could not see how"
            } else {
                container.record.reason = termination?.reason ?? "Error"
                if let text = termination?.message { container.record.message = text }
            }
            let kept = container.record.keeperFDs ?? []
            container.record.keeperFDs = nil
            save(container.record)
            container.exited.fire()
            publish(.containerStoppedEvent, container, sandbox)
            return kept
        }
        // The exit is recorded: the pause process need not keep the pidfd and pipes any longer
        // (podshim's own read ends keep the pipes open until they are drained).
        sandbox.pod.releaseKept(kept)
    }

    func pauseExited(_ sandbox: ManagedSandbox, status: ExitStatus?) {
        let containers = sandbox.lock.withLock { () -> [ManagedContainer] in
            sandbox.record.ready = false
            save(sandbox.record)
            return sandbox.containers
        }
        sandbox.pauseExited.fire()
        // Without its pause process the pod has no namespaces to offer: take the containers down.
        for container in containers where sandbox.lock.withLock({ container.record.state == .running }) {
            container.runtime.kill()
        }
        logger.info("sandbox \(sandbox.id.prefix(13)): pause exited (\(status.map { "\($0)" } ?? "unknown status"))")
    }

    /// Call with `sandbox.lock` held.
    func publish(_ type: Runtime_V1_ContainerEventType, _ container: ManagedContainer, _ sandbox: ManagedSandbox) {
        var event = Runtime_V1_ContainerEventResponse()
        event.containerID = container.id
        event.containerEventType = type
        event.createdAt = nowNanoseconds()
        event.podSandboxStatus = CRIStatus.sandboxStatus(sandbox)
        event.containersStatuses = [CRIStatus.containerStatus(container)]
        events.publish(event)
    }

    // MARK: - Records

    /// Writes a sandbox record. A failure is logged, not thrown: the live state is right, and a
    /// restarted daemon finds the previous record (and reconciles it against the processes).
    func save(_ record: SandboxRecord) {
        do { try store.save(record) } catch { logger.error("save sandbox record \(record.id.prefix(13)): \(error)") }
    }

    /// Writes a container record; a failure is logged (see the sandbox's).
    func save(_ record: ContainerRecord) {
        do { try store.save(record) } catch { logger.error("save container record \(record.id.prefix(13)): \(error)") }
    }

    // MARK: - Runtime configuration

    /// The node's pod CIDR(s) from UpdateRuntimeConfig, kept under the state directory.
    var podCIDR: String {
        // Missing until UpdateRuntimeConfig sets one: empty means none.
        (try? String(contentsOfFile: store.directory + "/pod-cidr", encoding: .utf8)) ?? ""
    }

    func setPodCIDR(_ cidr: String) throws(PodshimError) {
        for (index, part) in cidr.split(separator: ",", omittingEmptySubsequences: false).enumerated() where !cidr.isEmpty {
            let pieces = part.split(separator: "/")
            guard pieces.count == 2, let bits = Int(pieces[1]), bits >= 0, bits <= 128,
                  pieces[0].allSatisfy({ $0.isHexDigit || $0 == "." || $0 == ":" }) else {
                throw CRIError.invalidArgument("runtime_config.network_config.pod_cidr", "\"\(cidr)\": entry \(index) is not a CIDR")
            }
        }
        do {
            try FileSystem.writeAtomically(store.directory + "/pod-cidr", cidr, mode: 0o600, durable: false)
        } catch {
            throw CRIError.internal("store pod CIDR: \(error)")
        }
        network?.podCIDR = cidr
        logger.info("pod CIDR \(cidr.isEmpty ? "(none)" : cidr) (CNI configurations using \(CNIConfigurationDirectory.podCIDRPlaceholder) get it)")
    }

    /// What a hybrid or v1 host means for a kubelet, or nil on a full cgroup v2 host.
    var cgroupNotice: String? {
        guard hierarchy?.canEnforceLimits != true else { return nil }
        return "this host's cgroup v2 hierarchy cannot enforce cpu/memory/pids (cgroup v1 or hybrid): run the kubelet with "
            + "cgroupsPerQOS: false and enforceNodeAllocatable: [] (its /kubepods cgroups would be v1, which podshim does not use)"
    }

    /// Set when `--pod-pids-limit` is configured but this host cannot enforce it (no cgroup v2
    /// hierarchy, or no pids controller in it): said at start-up and in Status.
    var pidsLimitNotice: String? {
        guard let limit = configuration.podPidsLimit else { return nil }
        guard let hierarchy else { return "pod pids limit \(limit) is not enforced: no cgroup v2 hierarchy is mounted" }
        guard !hierarchy.controllers.contains("pids") else { return nil }
        return "pod pids limit \(limit) is not enforced: cgroup v2 at \(hierarchy.mountPoint) has no pids controller"
    }

    /// Status(verbose) `config`: where things are, the cgroup driver and what it means on this host.
    func verboseInfo() -> String {
        var values: [String: Any] = [
            "stateDir": configuration.stateDirectory, "rootDir": configuration.rootDirectory,
            "imageDir": configuration.imageDirectory, "cgroupDriver": configuration.cgroupDriver.rawValue,
            "cgroupLimits": hierarchy?.canEnforceLimits == true ? "enforced" : "not enforced on this host",
            "podCIDR": podCIDR,
        ]
        if let cgroupNotice { values["cgroupNotice"] = cgroupNotice }
        // Cannot fail for these strings; "{}" is only a fallback.
        return (try? JSONSerialization.data(withJSONObject: values, options: [.sortedKeys, .withoutEscapingSlashes]))
            .map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    // MARK: - Restart

    func register(_ sandbox: ManagedSandbox) {
        table.withLock { $0.sandboxes[sandbox.id] = sandbox }
    }
}

extension ImageDefaults {
    init(_ config: ImageConfig?) {
        self.init()
        guard let config else { return }
        entrypoint = config.entrypoint
        cmd = config.cmd
        env = config.env
        workingDir = config.workingDir.flatMap { $0.isEmpty ? nil : $0 }
        user = config.user.flatMap { $0.isEmpty ? nil : $0 }
    }
}
