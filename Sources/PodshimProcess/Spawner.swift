import CShims
import Glibc
import PodshimCgroups
import PodshimSecurity
import PodshimSystem
import Synchronization

/// Why a process could not be started: the stage in the child, what it acted on, and the errno.
/// Reads like `execve nope: ENOENT` or `mount /var/lib/podshim/… on /data: ENOENT`.
public struct SpawnError: Error, Equatable, CustomStringConvertible, Sendable {
    public var stage: String
    public var detail: String?
    public var errno: Errno

    public var description: String {
        if let detail { return "\(stage) \(detail): \(errno.symbolicName)" }
        return "\(stage): \(errno.symbolicName)"
    }

    /// The child's setup was done and execve refused the program (`errno` says why: ENOENT,
    /// EACCES, ENOEXEC, …).
    public var isExecve: Bool {
        stage == String(cString: psh_stage_name(Int32(bitPattern: PSH_STAGE_EXECVE.rawValue)))
    }
}

/// Starts processes from ``ProcessPlan``s through the single C post-fork path.
public enum Spawner {
    /// Standard streams of the new process: fds in this process, or -1 for /dev/null.
    public struct Stdio: Sendable {
        public var input: Int32 = -1
        public var output: Int32 = -1
        public var error: Int32 = -1
        public init(input: Int32 = -1, output: Int32 = -1, error: Int32 = -1) {
            self.input = input
            self.output = output
            self.error = error
        }
    }

    /// Starts `plan`; returns once the process has exec'd. `sandbox` is the pause process whose
    /// namespaces the plan joins. `onExit` runs on the event loop thread — also after a failed start,
    /// whose child exits 127 after reporting.
    ///
    /// `onCloned` runs as soon as the clone has returned, so the caller can record the process.
    ///
    /// The child normally runs with CLONE_VM | CLONE_VFORK: the calling thread is suspended in the
    /// clone until the child has exec'd or failed, so a timeout measured by that thread could never
    /// fire. `setupTimeout` is therefore kept by a ``SetupWatchdog`` on `timekeeper`'s thread: a
    /// child that has neither exec'd nor reported when it expires (a mount of a hung network file
    /// system, say) is killed through the pidfd the kernel wrote during the clone, the suspended
    /// thread wakes, and the start fails with ETIMEDOUT. The same watchdog bounds the fork-like
    /// fallback (no clone3 trampoline for this architecture). No lock is held during the child's
    /// setup (see ``EventLoop``).
    ///
    /// With a `cgroup`, the child is born in it (clone3 CLONE_INTO_CGROUP); where the kernel
    /// refuses that, it is moved there right after the clone, before it can exec.
    public static func spawn(
        _ plan: ProcessPlan, sandbox: ProcessHandle?, pidNamespaceHolder: ProcessHandle? = nil, stdio: Stdio,
        cgroup: Cgroup? = nil, setupTimeout: Double = 60, timekeeper: any Timekeeper = DeadlineTimer.shared,
        profile: StartProfileRecorder? = nil,
        onCloned: (ProcessHandle) -> Void = { _ in },
        onExit: @escaping (ExitStatus) -> Void
    ) throws(SpawnError) -> ProcessHandle {
        if (!plan.joinedNamespaces.isEmpty || plan.joinsSandboxPIDNamespace) && sandbox == nil {
            throw SpawnError(stage: "setns", detail: "(no sandbox process)", errno: .invalidArgument)
        }
        if plan.pidNamespaceTarget != nil && pidNamespaceHolder == nil {
            throw SpawnError(stage: "setns", detail: "(pid of container \(plan.pidNamespaceTarget ?? ""): not running)",
                             errno: .noSuchProcess)
        }
        let arena = CArena()
        defer { arena.release() }
        var config = makeConfig(plan, sandbox: sandbox, stdio: stdio, arena: arena)
        if let pidNamespaceHolder { config.pid_ns_pidfd = pidNamespaceHolder.pidfd }
        var cgroupFD: Int32 = -1
        if let cgroup {
            do {
                cgroupFD = try cgroup.openDirectory()
            } catch {
                throw SpawnError(stage: "open cgroup", detail: cgroup.path, errno: error.errno)
            }
        }
        defer { if cgroupFD >= 0 { close(cgroupFD) } }
        config.cgroup_fd = cgroupFD
        let marks = profile == nil ? nil : arena.array([Int64](repeating: 0, count: Int(PSH_MARK_COUNT.rawValue)))
        config.profile = marks

        let watchdog = SetupWatchdog()
        defer { watchdog.release() }
        let token = timekeeper.schedule(at: timekeeper.now().advanced(bySeconds: setupTimeout)) { _ in watchdog.expire() }
        defer { timekeeper.cancel(token) }
        var placement: SystemError?
        let started: Int32 = EventLoop.shared.spawn({
            var result = psh_spawn_start(&config, watchdog.handle)
            if result < 0 && config.cgroup_fd >= 0 && [ENOSYS, EINVAL, EOPNOTSUPP].contains(-result) {
                config.cgroup_fd = -1 // a kernel without CLONE_INTO_CGROUP
                result = psh_spawn_start(&config, watchdog.handle)
                if result == 0, let cgroup {
                    do throws(SystemError) { try cgroup.add(pid: watchdog.handle.pointee.pid) } catch { placement = error }
                }
            }
            return (pid: result == 0 ? watchdog.handle.pointee.pid : 0, value: result)
        }, onExit: onExit)
        let handle = watchdog.handle.pointee
        if let placement {
            _ = psh_pidfd_send_signal(handle.pidfd, SIGKILL)
            close(handle.report_fd)
            close(handle.pidfd)
            throw SpawnError(stage: "move into cgroup", detail: placement.path, errno: placement.errno)
        }
        if started < 0 {
            if watchdog.finish() {
                throw SpawnError(stage: "setup", detail: "(no execve within \(setupTimeout)s)", errno: .timedOut)
            }
            throw SpawnError(stage: "clone3", detail: plan.newNamespaces.isEmpty ? nil : "(\(plan.newNamespaces))",
                             errno: Errno(rawValue: -started))
        }
        let process = ProcessHandle(pid: handle.pid, pidfd: handle.pidfd)
        if let profile, let marks {
            profile.profile.appendSpawnMarks(Array(UnsafeBufferPointer(start: marks, count: Int(PSH_MARK_COUNT.rawValue))))
        }
        onCloned(process)
        profile?.mark("spawn.cloned")
        var report = psh_spawn_report()
        // The watchdog kills a child that hangs, which closes the report pipe.
        let outcome = psh_spawn_finish(watchdog.handle, &report)
        profile?.mark("spawn.finish")
        if watchdog.finish() {
            // The child was killed in its setup (its pipe closed as if it had exec'd); make sure.
            _ = try? process.send(.kill) // it is already dying from the watchdog's SIGKILL; ESRCH is fine
            throw SpawnError(stage: "setup", detail: "(no execve within \(setupTimeout)s)", errno: .timedOut)
        }
        if outcome == 1 { throw describe(report, plan: plan, sandbox: sandbox) }
        return process
    }

    /// Turns the child's `{stage, errno, index}` into an error naming what the stage acted on.
    static func describe(_ report: psh_spawn_report, plan: ProcessPlan, sandbox: ProcessHandle?) -> SpawnError {
        let stage = String(cString: psh_stage_name(report.stage))
        let index = Int(report.index)
        var detail: String?
        switch psh_stage(UInt32(bitPattern: report.stage)) {
        case PSH_STAGE_SETNS:
            detail = "(\(plan.joinedNamespaces)) of pid \(sandbox?.pid ?? 0)"
        case PSH_STAGE_HOSTNAME:
            detail = plan.hostname
        case PSH_STAGE_ROOTFS_MOUNT:
            detail = plan.rootfsMount.map { "\($0.fileSystemType ?? "bind") on \(plan.rootfs ?? "")" } ?? plan.rootfs
        case PSH_STAGE_OPEN_ROOTFS, PSH_STAGE_PIVOT_ROOT:
            detail = plan.rootfs
        case PSH_STAGE_SYSCTL:
            if plan.sysctls.indices.contains(index) { detail = "\(plan.sysctls[index].path)=\(plan.sysctls[index].value)" }
        case PSH_STAGE_MOUNT_TARGET, PSH_STAGE_MOUNT, PSH_STAGE_REMOUNT, PSH_STAGE_CLONE_MOUNT, PSH_STAGE_PROPAGATION:
            if plan.mounts.indices.contains(index) {
                let mount = plan.mounts[index]
                detail = "\(mount.source ?? mount.fileSystemType ?? "none") on \(mount.target)"
            }
        case PSH_STAGE_MKNOD:
            if plan.devices.indices.contains(index) { detail = plan.devices[index].path }
        case PSH_STAGE_SYMLINK:
            if plan.symlinks.indices.contains(index) { detail = plan.symlinks[index].path }
        case PSH_STAGE_SETUID:
            detail = "\(plan.uid)"
        case PSH_STAGE_SETGID:
            detail = "\(plan.gid)"
        case PSH_STAGE_BOUNDING_SET, PSH_STAGE_AMBIENT:
            if index >= 0 { detail = Capabilities.name(of: Int32(index)) }
        case PSH_STAGE_SECCOMP:
            detail = "(\((plan.seccompFilter?.count ?? 0) / 8) instructions)"
        case PSH_STAGE_CHDIR:
            detail = plan.workingDirectory ?? "/"
        case PSH_STAGE_EXECVE:
            detail = plan.argv.first
        default:
            break
        }
        return SpawnError(stage: stage, detail: detail, errno: Errno(rawValue: report.error))
    }

    private static func makeConfig(
        _ plan: ProcessPlan, sandbox: ProcessHandle?, stdio: Stdio, arena: CArena
    ) -> psh_spawn_config {
        var config = psh_spawn_config()
        config.clone_flags = UInt64(cloneFlags(plan.newNamespaces))
        config.join_pidfd = plan.joinedNamespaces.isEmpty ? -1 : (sandbox?.pidfd ?? -1)
        config.join_flags = cloneFlags(plan.joinedNamespaces)
        config.pid_ns_pidfd = plan.joinsSandboxPIDNamespace ? (sandbox?.pidfd ?? -1) : -1
        config.hostname = arena.string(plan.hostname)
        config.loopback_up = plan.loopbackUp
        config.sysctls = UnsafePointer(arena.array(plan.sysctls.map {
            psh_file_write(path: arena.string($0.path)!, value: arena.string($0.value)!)
        }))
        config.sysctl_count = plan.sysctls.count
        if let adjust = plan.oomScoreAdjust {
            config.set_oom_score_adj = true
            config.oom_score_adj = adjust
        }
        config.rootfs = arena.string(plan.rootfs)
        if let rootfsMount = plan.rootfsMount {
            config.rootfs_mount = UnsafePointer(arena.array([mountSpec(rootfsMount, arena: arena)]))
        }
        config.mounts = UnsafePointer(arena.array(plan.mounts.map { mountSpec($0, arena: arena) }))
        config.mount_count = plan.mounts.count
        config.devices = UnsafePointer(arena.array(plan.devices.map {
            psh_device_spec(path: arena.string($0.path)!, mode: UInt32(S_IFCHR) | $0.permissions,
                            major: $0.major, minor: $0.minor)
        }))
        config.device_count = plan.devices.count
        config.symlinks = UnsafePointer(arena.array(plan.symlinks.map {
            psh_symlink_spec(target: arena.string($0.target)!, path: arena.string($0.path)!)
        }))
        config.symlink_count = plan.symlinks.count
        config.readonly_rootfs = plan.readOnlyRootfs
        if let capabilities = plan.capabilities {
            config.set_capabilities = true
            config.cap_last = Capabilities.lastCapability
            config.cap_bounding = capabilities.bounding
            config.cap_permitted = capabilities.permitted
            config.cap_effective = capabilities.effective
            config.cap_inheritable = capabilities.inheritable
            config.cap_ambient = capabilities.ambient
        }
        config.no_new_privs = plan.noNewPrivileges
        if let filter = plan.seccompFilter, !filter.isEmpty {
            config.seccomp_filter = UnsafeRawPointer(arena.array(filter))
            config.seccomp_filter_length = UInt16(clamping: filter.count / 8)
        }
        config.uid = plan.uid
        config.gid = plan.gid
        config.supplementary_gids = UnsafePointer(arena.array(plan.supplementaryGroups))
        config.supplementary_gid_count = plan.supplementaryGroups.count
        config.path = arena.string(plan.argv[0])
        config.argv = UnsafePointer(arena.stringArray(plan.argv))
        config.envp = UnsafePointer(arena.stringArray(plan.environment))
        config.search_path = arena.string(plan.searchPath)
        config.cwd = arena.string(plan.workingDirectory)
        config.stdio = (stdio.input, stdio.output, stdio.error)
        config.controlling_tty = plan.controllingTerminal
        return config
    }

    private static func mountSpec(_ mount: MountPlan, arena: CArena) -> psh_mount_spec {
        psh_mount_spec(
            source: arena.string(mount.source), target: arena.string(mount.target)!,
            fstype: arena.string(mount.fileSystemType), flags: mountFlags(mount.flags),
            data: arena.string(mount.data),
            target_kind: mount.targetKind == .file ? PSH_TARGET_FILE : PSH_TARGET_DIRECTORY,
            optional: mount.optional, mask: mount.mask,
            propagation: Int32(mount.propagation == .shared ? PSH_PROPAGATION_SHARED
                : mount.propagation == .slave ? PSH_PROPAGATION_SLAVE : PSH_PROPAGATION_PRIVATE),
            recursive_readonly: mount.recursiveReadOnly, source_fd: mount.sourceTree ?? -1)
    }

    static func cloneFlags(_ namespaces: Namespaces) -> Int32 {
        var flags: Int32 = 0
        if namespaces.contains(.mount) { flags |= psh_clone_newns }
        if namespaces.contains(.pid) { flags |= psh_clone_newpid }
        if namespaces.contains(.network) { flags |= psh_clone_newnet }
        if namespaces.contains(.ipc) { flags |= psh_clone_newipc }
        if namespaces.contains(.uts) { flags |= psh_clone_newuts }
        if namespaces.contains(.cgroup) { flags |= psh_clone_newcgroup }
        return flags
    }

    static func mountFlags(_ flags: MountFlags) -> UInt {
        let table: [(MountFlags, UInt)] = [
            (.readOnly, psh_ms_rdonly), (.noSuid, psh_ms_nosuid), (.noDev, psh_ms_nodev), (.noExec, psh_ms_noexec),
            (.bind, psh_ms_bind), (.recursive, psh_ms_rec), (.strictAtime, psh_ms_strictatime),
            (.relatime, psh_ms_relatime),
        ]
        return table.reduce(0) { flags.contains($1.0) ? $0 | $1.1 : $0 }
    }
}

/// C memory for one spawn, freed together once the clone has happened (the child has its copy).
final class CArena {
    private var allocations: [UnsafeMutableRawPointer] = []

    func string(_ value: String?) -> UnsafePointer<CChar>? {
        guard let value, let copy = strdup(value) else { return nil }
        allocations.append(UnsafeMutableRawPointer(copy))
        return UnsafePointer(copy)
    }

    func array<T>(_ values: [T]) -> UnsafeMutablePointer<T>? {
        guard !values.isEmpty else { return nil }
        let buffer = UnsafeMutablePointer<T>.allocate(capacity: values.count)
        buffer.initialize(from: values, count: values.count)
        allocations.append(UnsafeMutableRawPointer(buffer))
        return buffer
    }

    /// A NULL-terminated `char *[]`.
    func stringArray(_ values: [String]) -> UnsafeMutablePointer<UnsafeMutablePointer<CChar>?> {
        let buffer = UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>.allocate(capacity: values.count + 1)
        for (index, value) in values.enumerated() {
            buffer[index] = UnsafeMutablePointer(mutating: string(value))
        }
        buffer[values.count] = nil
        allocations.append(UnsafeMutableRawPointer(buffer))
        return buffer
    }

    func release() {
        for allocation in allocations { free(allocation) }
        allocations.removeAll()
    }
}

/// Kills a child whose setup outlives its timeout. The spawning thread is suspended inside the
/// clone (CLONE_VFORK) while the child sets up, so the deadline runs on a timer thread; the pidfd
/// it needs is written into ``handle`` by the kernel during the clone and read atomically by C.
/// ``finish()`` closes the window: after it, an expiry does nothing.
final class SetupWatchdog: Sendable {
    private struct State {
        var inSetup = true
        var expired = false
    }

    /// The spawn handle psh_spawn_start fills; heap memory, valid until ``release()``.
    nonisolated(unsafe) let handle: UnsafeMutablePointer<psh_spawn_handle> // written by the kernel and the spawning thread; read by `expire` only through psh_spawn_kill_in_setup's atomic load, under `state`
    private let state = Mutex(State())

    init() {
        handle = .allocate(capacity: 1)
        handle.initialize(to: psh_spawn_handle(pid: 0, pidfd: -1, report_fd: -1))
    }

    /// The timeout expired: kill the child if it is still setting up.
    func expire() {
        state.withLock { state in
            guard state.inSetup else { return }
            state.expired = true
            _ = psh_spawn_kill_in_setup(handle) // -ESRCH before the clone wrote the pidfd: `finish` reports the expiry anyway
        }
    }

    /// The setup is over (exec'd, failed, or killed). True when the watchdog expired first.
    func finish() -> Bool {
        state.withLock { state in
            state.inSetup = false
            return state.expired
        }
    }

    /// Frees the handle; call after ``finish()`` and after the timer is cancelled or has run.
    func release() {
        _ = finish()
        handle.deallocate()
    }
}
