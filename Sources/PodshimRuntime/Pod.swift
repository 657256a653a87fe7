import Foundation
import Glibc
import Synchronization
import PodshimCgroups
import PodshimSpec
import PodshimSystem
import PodshimProcess

/// Something that happened to a pod, delivered in order to the thread that controls it.
public enum PodEvent: Sendable {
    case containerExited(name: String, status: ExitStatus)
    /// An exec'd process (ExecSync) ended.
    case execExited(id: Int32, status: ExitStatus)
    case sandboxExited(ExitStatus)
    /// A probe run finished: `success`, and what it saw.
    case probeFinished(name: String, kind: ProbeKind, success: Bool, detail: String)
    /// A request to stop the pod (a signal to `podshim run`, later an API call).
    case stopRequested
}

/// A pod on this host: its directories, its sandbox (pause) process and its containers.
/// The methods that change it are called by one controlling thread, which also consumes ``events``.
public final class Pod: Sendable {
    /// What changes after the pod is created, read by any thread (status RPCs) and changed by the
    /// controlling task (and by spawn callbacks on the spawning thread).
    private struct State {
        var spec: PodSpec
        var containers: [Container]
        var sandbox: ProcessHandle?
        var cgroups: PodCgroups?
        var cgroupNotice: String?
        var record: PodStateRecord
        var keeper: FDKeeper?
    }

    private let guarded: Mutex<State>

    /// The pod as specified; containers added through ``add(_:plan:resources:logPath:)`` are appended.
    public var spec: PodSpec { guarded.withLock { $0.spec } }
    public let layout: PodLayout
    public let configuration: RuntimeConfiguration
    /// The pod's containers, in the order they were added.
    public var containers: [Container] { guarded.withLock { $0.containers } }
    /// The sandbox is privileged: it keeps podshim's capabilities (a privileged container needs it).
    public let privilegedSandbox: Bool
    /// Exits and stop requests, in the order they happened.
    public let events = EventQueue<PodEvent>()
    /// The pause process, once started or adopted.
    public var sandbox: ProcessHandle? { guarded.withLock { $0.sandbox } }
    /// The pod's cgroups; nil when no cgroup v2 hierarchy is mounted.
    public var cgroups: PodCgroups? { guarded.withLock { $0.cgroups } }
    /// The host's cgroup v2 hierarchy, detected once by whoever created the pod; nil when none is mounted.
    public let cgroupHierarchy: CgroupHierarchy?
    /// Set when limits cannot be enforced on this host, with the reason (shown once, and in status).
    public var cgroupNotice: String? { guarded.withLock { $0.cgroupNotice } }
    /// The pause process's fd keeper (daemon pods): what must outlive podshim is held there.
    public var keeper: FDKeeper? { guarded.withLock { $0.keeper } }

    private func update(_ body: (inout State) -> Void) { guarded.withLock { body(&$0) } }

    /// A pod whose containers have been planned (see ``PodPlanner``).
    /// `privileged` overrides the sandbox's privilege (the CRI says it); by default the sandbox is
    /// privileged when a container of `spec` is. `daemon` marks the record as owned by `podshim serve`,
    /// which re-adopts its pods after a restart instead of letting them be cleaned up.
    /// `cgroupParent`: a kubelet's pod cgroup (absolute path) with its leaf naming, and the
    /// resources to write to it; nil = podshim's own `<root>/podshim/pod-<id>`.
    public init(spec: PodSpec, layout: PodLayout, configuration: RuntimeConfiguration, plans: [ProcessPlan],
                cgroupHierarchy: CgroupHierarchy?, privileged: Bool? = nil, daemon: Bool = false,
                cgroupParent: CgroupParent? = nil) {
        self.cgroupParent = cgroupParent
        self.cgroupHierarchy = cgroupHierarchy
        self.layout = layout
        self.configuration = configuration
        privilegedSandbox = privileged ?? SandboxPlanner.isPrivileged(spec)
        let containers = zip(spec.containers.indices, plans).map {
            Container(index: $0.0, spec: spec.containers[$0.0], plan: $0.1,
                      resources: PodPlanner.cgroupResources(spec.containers[$0.0].resources))
        }
        var record = PodStateRecord(
            name: spec.name, namespace: spec.namespace, podID: layout.podID,
            owner: ProcessIdentity.of(pid: getpid()) ?? ProcessIdentity(pid: getpid(), startTime: 0),
            stateDirectory: layout.stateDirectory, dataDirectory: layout.dataDirectory)
        record.daemon = daemon ? true : nil
        guarded = Mutex(State(spec: spec, containers: containers, record: record))
        outputFIFOs = daemon
    }

    /// Where the pod's cgroups go when a kubelet names their parent.
    public struct CgroupParent: Sendable, Equatable {
        /// Absolute path of the parent (the pod cgroup the kubelet created).
        public var path: String
        public var naming: PodCgroups.Naming
        /// The sandbox's resources and overhead, written to the parent; nil leaves it as it is.
        public var resources: CgroupResources?

        public init(path: String, naming: PodCgroups.Naming, resources: CgroupResources?) {
            self.path = path
            self.naming = naming
            self.resources = resources
        }
    }

    public let cgroupParent: CgroupParent?

    /// Container output goes through named pipes under the pod's state directory, which survive
    /// the daemon (`podshim serve`); `podshim run` uses plain pipes.
    private let outputFIFOs: Bool

    /// Where the named pipes of container output live.
    public var outputDirectory: String { layout.stateDirectory + "/io" }

    // MARK: - Setting up

    /// Creates the pod's state record and directories, its /etc files and volumes (its /dev/shm
    /// is mounted by ``startSandbox()``). The record comes first, so a crash at any later point
    /// leaves something recovery can find.
    public func prepare() throws(PodError) {
        do {
            try FileSystem.createDirectory(layout.stateDirectory, mode: 0o700)
            update { $0.record.privileged = privilegedSandbox }
            try saveRecord()
            try FileSystem.createDirectory(layout.etcDirectory)
            // Generated files, rewritten with every pod: no fsync needed. A host-network pod sees
            // the host's name and hosts file, as with containerd.
            let spec = self.spec
            let hostname = spec.hostNetwork ? Self.hostHostname() : spec.hostname
            try FileSystem.writeAtomically(layout.etcDirectory + "/hostname", hostname + "\n", durable: false)
            let hosts = spec.hostNetwork
                // A host without /etc/hosts: the generated file.
                ? ((try? String(contentsOfFile: "/etc/hosts", encoding: .utf8)) ?? Self.hostsFile(hostname: hostname))
                : Self.hostsFile(hostname: hostname)
            try FileSystem.writeAtomically(layout.etcDirectory + "/hosts", hosts, durable: false)
            // The CRI's DnsConfig, else the manifest's dnsPolicy and dnsConfig over the host's file.
            // A host without resolv.conf has no DNS servers to pass on.
            let resolv = spec.resolvConf(hostResolvConf: (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? "")
            try FileSystem.writeAtomically(layout.etcDirectory + "/resolv.conf", resolv, durable: false)
            try FileSystem.createDirectory(layout.dataDirectory, mode: 0o711)
            try FileSystem.createDirectory(layout.logDirectory)
        } catch {
            throw PodError("pod \(spec.name)", error)
        }
        do {
            try prepareCgroups()
        } catch {
            throw PodError("pod \(spec.name) cgroups", error)
        }
        for (index, volume) in spec.volumes.enumerated() {
            do {
                try prepare(volume)
            } catch {
                throw PodError("volume \(volume.name) (spec.volumes[\(index)])", error)
            }
        }
        for container in containers {
            try prepareDirectories(of: container)
        }
    }

    private func prepareDirectories(of container: Container) throws(PodError) {
        do {
            try FileSystem.createDirectory(layout.upperDirectory(container.name))
            try FileSystem.createDirectory(layout.workDirectory(container.name))
            try FileSystem.createDirectory(layout.rootfsDirectory(container.name))
            try FileSystem.createDirectory(container.logPath.map { ($0 as NSString).deletingLastPathComponent }
                ?? layout.logDirectory + "/" + container.name)
        } catch {
            throw PodError("container \(container.name)", error)
        }
    }

    // MARK: - Containers added and removed one by one (the CRI)

    /// Adds a container to a running pod: its spec (and the volumes it brings), its directories and
    /// its leaf cgroup with its limits. It is created, not started.
    public func add(_ containerSpec: ContainerSpec, volumes: [Volume] = [], plan: ProcessPlan,
                    resources: CgroupResources, logPath: String?) throws(PodError) -> Container {
        let container = Container(index: -1, spec: containerSpec, plan: plan, resources: resources, logPath: logPath)
        for (index, volume) in volumes.enumerated() {
            do {
                try prepare(volume)
            } catch {
                throw PodError("volume \(volume.name) (mounts[\(index)])", error)
            }
        }
        try prepareDirectories(of: container)
        if let cgroups {
            do {
                container.cgroup = try cgroups.addContainer(containerSpec.name, resources: resources)
            } catch {
                throw PodError("container \(containerSpec.name) cgroup", error)
            }
        }
        update { state in
            state.spec.containers.append(containerSpec)
            state.spec.volumes += volumes
            state.containers.append(container)
        }
        return container
    }

    /// Re-attaches a container found running after a restart of podshim: `process` was opened
    /// with pidfd_open after its PID and start time matched the record. Its exit is not reaped by
    /// this process; whoever adopts it watches the pidfd.
    public func adopt(_ containerSpec: ContainerSpec, plan: ProcessPlan, resources: CgroupResources,
                      logPath: String?, process: ProcessHandle?, kept: [Int32] = []) -> Container {
        let container = Container(index: -1, spec: containerSpec, plan: plan, resources: resources, logPath: logPath)
        container.cgroup = cgroups?.container(containerSpec.name)
        if let process {
            container.markCloned()
            container.markStarted(process)
            if outputFIFOs {
                // A failure leaves outputLog nil, which re-adoption reports.
                reattachStdio(container, logPath: logPath ?? layout.logFile(container: container.name, attempt: 0), kept: kept)
            }
        }
        update { state in
            state.spec.containers.append(containerSpec)
            state.containers.append(container)
        }
        return container
    }

    /// Re-attaches a container of a planned pod (``PodRunner`` adopting a pod of the pod service)
    /// whose process was found again after a restart of podshim, running or kept by the pause
    /// process after its exit: it is started, its output (FIFOs) read again into its current log.
    public func adoptStarted(_ container: Container, process: ProcessHandle, keeperFDs: [Int32]) {
        container.markCloned()
        container.markStarted(process)
        container.keeperFDs = keeperFDs
        if outputFIFOs {
            // A failure leaves the output unread (the caller reports it): the log misses it.
            reattachStdio(container, logPath: container.logPath ?? layout.logFile(container: container.name, attempt: container.restartCount),
                          kept: keeperFDs)
        }
    }

    /// The latest attempt of `name` that has a log file (0 when none).
    public func latestAttempt(of name: String) -> Int {
        let directory = (layout.logFile(container: name, attempt: 0) as NSString).deletingLastPathComponent
        // No log directory yet: the first attempt.
        let files = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return files.compactMap { $0.hasSuffix(".log") ? Int($0.dropLast(4)) : nil }.max() ?? 0
    }

    /// Re-attaches the sandbox and the pod's cgroups after a restart of podshim.
    public func adoptSandbox(_ process: ProcessHandle?, cgroupPath: String?) {
        let keeper = process.flatMap(FDKeeper.reclaim(from:))
        var cgroups: PodCgroups?
        if let cgroupParent, cgroupHierarchy != nil {
            let controllers = Cgroup(path: cgroupParent.path).availableControllers()
            cgroups = PodCgroups(pod: Cgroup(path: cgroupParent.path), controllers: controllers, naming: cgroupParent.naming)
        } else if let cgroupPath {
            let controllers = Cgroup(path: cgroupPath).availableControllers()
            cgroups = PodCgroups(pod: Cgroup(path: cgroupPath), controllers: controllers)
        }
        let identity = process.flatMap { ProcessIdentity.of(pid: $0.pid) }
        update { state in
            state.sandbox = process
            state.keeper = keeper
            if let cgroups { state.cgroups = cgroups }
            if let identity { state.record.sandbox = identity }
        }
    }

    /// Removes a container that is not running: its layers, its leaf cgroup, its record entry.
    /// Its log file stays (the kubelet owns log rotation and removal).
    public func remove(_ container: Container) -> [PodError] {
        var problems: [PodError] = []
        container.kill()
        if let cgroup = container.cgroup {
            do { try cgroup.remove() } catch { problems.append(PodError("container \(container.name) cgroup", error)) }
        }
        for stream in ["stdout", "stderr"] { unlink(outputDirectory + "/" + container.name + "." + stream) }
        do {
            try FileSystem.removeTree(layout.containerDirectory(container.name))
        } catch {
            problems.append(PodError("container \(container.name)", error))
        }
        update { state in
            state.containers.removeAll { $0 === container }
            state.spec.containers.removeAll { $0.name == container.name }
            state.record.containers[container.name] = nil
            state.record.keeperFDs?[container.name] = nil
        }
        do { try saveRecord() } catch { problems.append(PodError("pod \(spec.name) record", error)) }
        return problems
    }

    /// The container named `name` (its layout name).
    public func container(named name: String) -> Container? {
        guarded.withLock { $0.containers.first { $0.name == name } }
    }

    /// Creates `<root>/podshim/pod-<id>/` with its leaves and limits. On a host without a usable
    /// cgroup v2 hierarchy the pod still runs; ``cgroupNotice`` says what is not enforced.
    private func prepareCgroups() throws(SystemError) {
        guard let hierarchy = cgroupHierarchy else {
            update { $0.cgroupNotice = "no cgroup v2 hierarchy is mounted: limits are not enforced, processes are not grouped" }
            return
        }
        if !hierarchy.canEnforceLimits {
            let notice = "cgroup v2 at \(hierarchy.mountPoint) has no \(hierarchy.missingControllers.joined(separator: ", ")) "
                + "controller (a cgroup v1 or hybrid host): limits are not enforced"
            update { $0.cgroupNotice = notice }
        }
        if let cgroupParent {
            update { state in
                state.record.cgroupParent = cgroupParent.path
                state.record.limitsEnforced = hierarchy.canEnforceLimits
            }
            try saveRecord()
            let created = try PodCgroups.create(hierarchy: hierarchy, parent: cgroupParent.path, naming: cgroupParent.naming,
                                                podResources: cgroupParent.resources)
            update { $0.cgroups = created }
            for container in containers {
                container.cgroup = try created.addContainer(container.name, resources: container.resources)
            }
            return
        }
        let root = configuration.cgroupRoot ?? hierarchy.mountPoint
        update { state in
            state.record.cgroup = PodCgroups.path(root: root, podID: layout.podID)
            state.record.limitsEnforced = hierarchy.canEnforceLimits
        }
        try saveRecord()
        let created = try PodCgroups.create(
            hierarchy: hierarchy, root: root, podID: layout.podID,
            containers: containers.map { ($0.name, $0.resources) }, podPidsLimit: configuration.podPidsLimit)
        update { $0.cgroups = created }
        for container in containers { container.cgroup = created.container(container.name) }
    }

    private func prepare(_ volume: Volume) throws(SystemError) {
        switch volume.source {
        case .emptyDir(let medium, let sizeLimit):
            let directory = layout.volumeDirectory(volume.name)
            try FileSystem.createDirectory(directory, mode: 0o777)
            _ = chmod(directory, 0o777) // the umask applies to mkdir; emptyDir is world-writable
            if medium == .memory {
                // The parser validated sizeLimit as a non-negative quantity; the tmpfs enforces it.
                let size = sizeLimit.flatMap { Quantity($0)?.value() }.map { ",size=\($0)" } ?? ""
                try Mounts.mountTmpfs(at: directory, options: "mode=0777" + size)
            }
        case .hostPath(let path, let type):
            try HostPathCheck.prepare(path: path, type: type)
        }
    }

    /// The host's name (gethostname): a host-network pod's hostname.
    public static func hostHostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "localhost" }
        let bytes = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The pod's /etc/hosts: localhost, and the pod's name on its IPs once it has some (on
    /// loopback before), as the kubelet writes it.
    static func hostsFile(hostname: String, ips: [String] = []) -> String {
        """
        # Generated by podshim for this pod.
        127.0.0.1\tlocalhost
        ::1\tlocalhost ip6-localhost ip6-loopback
        fe00::0\tip6-localnet
        fe00::0\tip6-mcastprefix
        fe00::1\tip6-allnodes
        fe00::2\tip6-allrouters

        """ + (ips.isEmpty ? ["127.0.0.1"] : ips).map { "\($0)\t\(hostname)\n" }.joined()
    }

    /// Rewrites the pod's /etc/hosts with its IPs (after it joined the network).
    public func writeHosts(ips: [String]) throws(SystemError) {
        let spec = self.spec
        guard !spec.hostNetwork else { return }
        try FileSystem.writeAtomically(layout.etcDirectory + "/hosts", Self.hostsFile(hostname: spec.hostname, ips: ips), durable: false)
    }

    /// Mounts the pod's /dev/shm, then starts the pause process in new network, IPC, UTS and PID
    /// namespaces.
    public func startSandbox() throws(PodError) {
        if !spec.hostIPC {
            // The pod's /dev/shm, shared by its containers (a host-IPC pod uses the host's).
            do {
                try FileSystem.createDirectory(layout.shmDirectory, mode: 0o1777)
                try Mounts.mountTmpfs(at: layout.shmDirectory, options: "mode=1777,size=65536k")
            } catch {
                throw PodError("pod \(spec.name) /dev/shm", error)
            }
        }
        let plan = SandboxPlanner.plan(pod: spec, pauseBinary: configuration.pauseBinary, privileged: privilegedSandbox)
        // A daemon pod's pause process is also its fd keeper: it gets a socketpair as fds 0 and 1.
        var pair: (pause: Int32, podshim: Int32)?
        if outputFIFOs {
            do {
                pair = try FDKeeper.makePair()
            } catch {
                throw PodError("sandbox fd keeper", error)
            }
        }
        let keeper = pair.map { FDKeeper(owning: $0.podshim) }
        defer { if let pair { close(pair.pause) } }
        do {
            let stdio = pair.map { Spawner.Stdio(input: $0.pause, output: $0.podshim) } ?? .init()
            let process = try Spawner.spawn(plan, sandbox: nil, stdio: stdio, cgroup: cgroups?.sandbox, onCloned: { process in
                let identity = ProcessIdentity.of(pid: process.pid)
                update { $0.record.sandbox = identity }
                try? saveRecord() // best effort: prepare() wrote the record; recovery also kills through the pod's cgroup
            }) { [events] status in
                events.post(.sandboxExited(status))
            }
            update { state in
                state.sandbox = process
                state.keeper = keeper
            }
        } catch {
            throw PodError("sandbox", error)
        }
    }

    /// Starts `container` in the sandbox's namespaces; returns once it has exec'd.
    /// On failure the container is marked as failed to start (its exit event still follows).
    public func start(_ container: Container, sink: LineSink?) throws(PodError) {
        let profile = StartProfileRecorder()
        let subject = "container \(container.name)"
        let output: ContainerOutput
        let plan: ProcessPlan
        let subPaths: [Int32]
        do {
            (plan, subPaths) = try openSubPaths(of: container)
        } catch {
            container.markFailedToStart(error.description)
            throw error
        }
        defer { for fd in subPaths { close(fd) } }
        profile.mark("pod.subpaths")
        let input: ContainerInput?
        /// The container's stdin: its terminal's slave side, its stdin pipe's read end, or none (/dev/null).
        var childInput: Int32 = -1
        do {
            if outputFIFOs { try FileSystem.createDirectory(outputDirectory, mode: 0o700) }
            output = try ContainerOutput(
                container: container.name,
                logPath: container.logPath ?? layout.logFile(container: container.name, attempt: container.restartCount), sink: sink,
                fifoDirectory: outputFIFOs && !container.tty ? outputDirectory : nil, terminal: container.tty)
            (input, childInput) = try Self.makeInput(for: container, output: output)
        } catch {
            container.markFailedToStart(String(describing: error))
            throw PodError(subject, error)
        }
        container.output = output
        container.input = input
        profile.mark("pod.output")
        defer {
            if childInput >= 0 && !container.tty { close(childInput) } // a terminal's slave is the output's to close
            output.closeChildEnds()
        }
        do {
            let name = container.name
            var holder: ProcessHandle?
            if let target = container.plan.pidNamespaceTarget {
                holder = self.container(named: target)?.process
            }
            let process = try Spawner.spawn(
                plan, sandbox: sandbox, pidNamespaceHolder: holder,
                stdio: .init(input: childInput, output: output.childStdout, error: output.childStderr),
                cgroup: container.cgroup,
                profile: profile,
                onCloned: { process in
                    container.markCloned()
                    container.holdMountNamespace(of: process.pid)
                    // The pidfd (watched) and the output pipes' read ends go to the pause process at
                    // once, so that an exit during a crash of podshim right now is not lost. On
                    // failure the container runs all the same; the caller reports the empty `keeperFDs`.
                    let kept = keeper.flatMap { try? $0.hold(Self.keptDescriptors(process: process, output: output, input: input), watchMask: 1) } ?? [] // see above
                    container.keeperFDs = kept
                    let identity = ProcessIdentity.of(pid: process.pid)
                    update { state in
                        state.record.containers[container.name] = identity
                        if !kept.isEmpty {
                            var all = state.record.keeperFDs ?? [:]
                            all[container.name] = kept
                            state.record.keeperFDs = all
                        }
                    }
                    try? saveRecord() // best effort: prepare() wrote the record; recovery also kills through the pod's cgroup
                }
            ) { [events] status in
                container.markExitObserved(at: MonotonicInstant.now())
                events.post(.containerExited(name: name, status: status))
            }
            container.markStarted(process)
            container.startProfile = profile.profile
        } catch {
            container.markFailedToStart(String(describing: error))
            throw PodError(subject, error)
        }
    }

    /// The container's stdin for attach sessions and the child's end of it: a copy of its
    /// terminal's master (and the slave side, which the output owns), a new pipe with `stdin`, or none.
    private static func makeInput(for container: Container, output: ContainerOutput) throws(SystemError) -> (ContainerInput?, Int32) {
        if let master = output.terminal {
            let copy = try libcCall("fcntl(F_DUPFD_CLOEXEC)", path: "terminal") { fcntl(master, F_DUPFD_CLOEXEC, 3) }
            return (ContainerInput(owning: copy, terminal: true, once: container.stdinOnce), output.childStdout)
        }
        guard container.stdin else { return (nil, -1) }
        let pipe = try Kernel.pipe()
        return (ContainerInput(owning: pipe.write, terminal: false, once: container.stdinOnce), pipe.read)
    }

    /// What the pause process holds for a container (see ``FDKeeper``), in this order: its pidfd,
    /// its output FIFOs' read ends (none with a terminal), then its input (stdin pipe's write end,
    /// or the terminal's master) when it has one. ``keptInput(_:of:)`` reads the order back.
    public static func keptDescriptors(process: ProcessHandle, output: ContainerOutput?, input: ContainerInput?) -> [Int32] {
        [process.pidfd] + (output?.pipeReadEnds ?? []) + (input.map { $0.isOpen ? [$0.fd] : [] } ?? [])
    }

    /// The keeper's number of `container`'s input in `kept` (see ``keptDescriptors(process:output:input:)``);
    /// nil when it has none (or it was closed for good: recorded as -1).
    public static func keptInput(_ kept: [Int32], of container: Container) -> Int32? {
        let index = container.tty ? 1 : (container.stdin ? 3 : nil)
        guard let index, kept.count > index, kept[index] >= 0 else { return nil }
        return kept[index]
    }

    /// Re-attaches the stdio of a container started by an earlier podshim: its output FIFOs are
    /// read again, or its terminal's master and its stdin pipe are taken back from the pause
    /// process (`kept`: the keeper's numbers). A failure leaves the output or input nil, which the
    /// caller reports.
    private func reattachStdio(_ container: Container, logPath: String, kept: [Int32]) {
        let taken: Int32? = {
            guard let number = Self.keptInput(kept, of: container), let pause = sandbox else { return nil }
            return try? FDKeeper.take(number, from: pause) // gone from the keeper: reported as no input
        }()
        if container.tty {
            guard let taken else { return }
            let copy = fcntl(taken, F_DUPFD_CLOEXEC, 3)
            guard copy >= 0 else {
                close(taken)
                return
            }
            container.output = try? ContainerOutput.reattach(container: container.name, logPath: logPath, terminal: copy) // reported by the caller
            container.input = ContainerInput(owning: taken, terminal: true, once: container.stdinOnce)
            return
        }
        container.output = try? ContainerOutput.reattach(container: container.name, logPath: logPath, fifoDirectory: outputDirectory) // reported by the caller
        if let taken { container.input = ContainerInput(owning: taken, terminal: false, once: container.stdinOnce) }
    }

    /// Closes `container`'s stdin for good (`stdinOnce` after its first attach session): podshim's
    /// writer, and the pause process's copy. Returns the keeper numbers with the input's marked -1
    /// (for the caller's record), or nil when nothing changed.
    public func closeInput(of container: Container, kept: [Int32]) -> [Int32]? {
        guard let input = container.input, input.closeForGood() else { return nil }
        container.input = nil
        var kept = kept
        if let number = Self.keptInput(kept, of: container) {
            releaseKept([number])
            kept[container.tty ? 1 : 3] = -1
        }
        return kept
    }

    /// Has the keeper close what it held for `container` (it has been removed).
    public func releaseKept(_ numbers: [Int32]) {
        guard let keeper else { return }
        for number in numbers where number >= 0 {
            _ = try? keeper.release(number) // best effort: the fds go when the pause process ends anyway
        }
    }

    /// Starts an exited container again as its next attempt, on a fresh writable layer (as the
    /// kubelet creates a new container); its log goes to `<n>.log`.
    public func restart(_ container: Container, sink: LineSink?) throws(PodError) {
        _ = container.prepareForRestart()
        do {
            for directory in [layout.upperDirectory(container.name), layout.workDirectory(container.name)] {
                try FileSystem.removeTree(directory)
                try FileSystem.createDirectory(directory)
            }
            try renewCgroup(of: container)
        } catch {
            container.markFailedToStart(String(describing: error))
            throw PodError("container \(container.name)", error)
        }
        try start(container, sink: sink)
    }

    /// Gives `container` a fresh leaf cgroup, as a new container gets: on Linux 6.18 a child cloned
    /// (CLONE_INTO_CGROUP) into a cgroup that once had cgroup.kill written is killed at birth (the
    /// kill sequence it is compared against is not the target's). The old one is removed (what
    /// still ran in it is killed).
    public func renewCgroup(of container: Container) throws(SystemError) {
        guard let cgroups, let old = container.cgroup else { return }
        if old.exists { try old.remove() }
        container.cgroup = try cgroups.addContainer(container.name, resources: container.resources)
    }

    /// Completes the creation of a re-adopted container that was never started: its directories
    /// and its leaf cgroup exist afterwards (a daemon killed during CreateContainer recorded the
    /// container first, then made them).
    public func completeCreation(of container: Container) throws(PodError) {
        try prepareDirectories(of: container)
        guard let cgroups, container.cgroup?.exists != true else { return }
        do {
            container.cgroup = try cgroups.addContainer(container.name, resources: container.resources)
        } catch {
            throw PodError("container \(container.name) cgroup", error)
        }
    }

    /// Every bind mount of a volume's subPath, opened inside the volume by the kernel (openat2
    /// RESOLVE_BENEATH: a symlink, even one swapped in by a running container of the pod, cannot
    /// lead out); a detached copy of that very mount (open_tree) is moved into the container, so
    /// what was opened is what gets mounted. Kubernetes creates a missing subPath; so does this, beneath the volume.
    /// Returns the plan to spawn and the descriptors to close once the child has its mounts.
    private func openSubPaths(of container: Container) throws(PodError) -> (ProcessPlan, [Int32]) {
        let volumeRoots = spec.volumes.map { volume -> String in
            switch volume.source {
            case .emptyDir: return layout.volumeDirectory(volume.name)
            case .hostPath(let path, _): return path
            }
        }
        var plan = container.plan
        var opened: [Int32] = []
        for index in plan.mounts.indices where plan.mounts[index].flags.contains(.bind) {
            guard let source = plan.mounts[index].source,
                  let root = volumeRoots.first(where: { source.hasPrefix($0 + "/") }) else { continue }
            let relative = String(source.dropFirst(root.count + 1))
            do {
                let tree = try FileSystem.cloneMountBeneath(root, relative, recursive: plan.mounts[index].flags.contains(.recursive))
                opened.append(tree)
                plan.mounts[index].sourceTree = tree
            } catch {
                for fd in opened { close(fd) }
                let code: PodshimError.Code = error.errno == .improperLink || error.errno == .tooManySymbolicLinkLevels
                    ? .invalidArgument : .internal
                throw PodError("container \(container.name)",
                               message: "subPath \(relative) of volume \(root): cannot be opened inside the volume (\(error))",
                               code: code)
            }
        }
        return (plan, opened)
    }

    // MARK: - Tearing down

    /// Sends SIGKILL to the pause process (its PID namespace ends with it).
    public func killSandbox() {
        _ = try? sandbox?.send(.kill) // a refused SIGKILL shows: every caller waits for the exit and says so; cgroup removal kills it too
    }

    /// Removes the pod's cgroups (killing anything left in them), mounts and directories, all but
    /// its logs. Returns what could not be removed.
    public func removeResources() -> [PodError] {
        var problems: [PodError] = []
        do {
            try cgroups?.remove(containers: containers.map(\.name))
        } catch {
            problems.append(PodError("pod \(spec.name) cgroups", error))
        }
        for directory in [layout.stateDirectory, layout.dataDirectory] {
            do {
                try FileSystem.removeTree(directory)
            } catch {
                problems.append(PodError("pod \(spec.name)", error))
            }
        }
        return problems
    }

    private func saveRecord() throws(SystemError) {
        let snapshot = guarded.withLock { $0.record }
        // Cannot fail: strings, integers and booleans only.
        let data = (try? JSONEncoder().encode(snapshot)).flatMap { String(data: $0, encoding: .utf8) } ?? "{}"
        // The daemon's own records (fsync'd) are what a restart reads; for its pods this file is
        // only the marker that keeps `podshim run`'s recovery away, so it needs no fsync.
        try FileSystem.writeAtomically(layout.stateFile, data, durable: snapshot.daemon != true)
    }
}

/// Kubernetes' hostPath `type` checks (and the *OrCreate variants).
enum HostPathCheck {
    static func prepare(path: String, type: HostPathType) throws(SystemError) {
        var info = stat()
        let exists = stat(path, &info) == 0
        let format = info.st_mode & S_IFMT
        func require(_ ok: Bool, _ what: String) throws(SystemError) {
            if !ok { throw SystemError("hostPath is not \(what)", path: path, errno: exists ? .invalidArgument : .noSuchFileOrDirectory) }
        }
        switch type {
        case .unset:
            try require(exists, "present")
        case .directoryOrCreate:
            if !exists { try FileSystem.createDirectory(path) } else { try require(format == S_IFDIR, "a directory") }
        case .directory:
            try require(exists && format == S_IFDIR, "a directory")
        case .fileOrCreate:
            if !exists {
                let fd = try libcCall("create", path: path) { open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644) }
                close(fd)
            } else {
                try require(format == S_IFREG, "a file")
            }
        case .file:
            try require(exists && format == S_IFREG, "a file")
        case .socket:
            try require(exists && format == S_IFSOCK, "a socket")
        case .charDevice:
            try require(exists && format == S_IFCHR, "a character device")
        case .blockDevice:
            try require(exists && format == S_IFBLK, "a block device")
        }
    }
}
