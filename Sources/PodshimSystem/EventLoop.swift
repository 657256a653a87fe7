import CShims
import Foundation
import Glibc

/// The one thread that waits on the kernel for podshim's events: process exits and fd readiness,
/// from one level-triggered epoll set.
///
/// **Readiness.** ``watch(_:onReadable:onClose:)`` adds an fd (a container's output pipe, a
/// re-adopted process's pidfd); its handler runs on the loop thread whenever the fd is readable or
/// hung up, and returns false when it is done with the fd.
///
/// **Exits.** The loop is the one owner of `waitid` in this process. podshim is a child
/// subreaper, so orphans of containers come back to it too; a reaper that waited only for known
/// pids would leave those as zombies, and two waiters would steal each other's exits. Every child
/// started through ``spawn(_:onExit:)`` gets a pidfd in the epoll set; when one becomes readable
/// the loop reaps every exited child (`waitid(P_ALL, WNOHANG)`) and hands each exit to whoever
/// registered its pid. Orphans have no pidfd: a one-second timerfd in the same set reaps them.
///
/// No exit can be lost, and no lock is held while a child sets up: ``spawn(_:onExit:)`` counts
/// itself in flight around the clone; an exit reaped for a pid nobody registered while a spawn is
/// in flight is kept, and the spawn that then registers that pid takes it, after checking with
/// `waitid(WNOWAIT)` that its own child is really gone (a kept exit of a recycled pid is never
/// handed to a live child). With no spawn in flight an unregistered pid is an orphan.
///
/// Handlers run on the loop thread and must be short (a read and a write, a push onto a queue).
/// Deadlines are not here: they run on ``DeadlineTimer``'s real-time thread, which output
/// bursts must not delay.
public final class EventLoop: @unchecked Sendable { // owns the epoll fd and the sweep timerfd (kernel handles); tables under `lock`; handlers run on its one thread
    /// The process-wide loop. Its thread starts with the first watch or spawn, which also makes
    /// this process a child subreaper.
    public static let shared = EventLoop()

    private struct Readiness {
        var onReadable: (Int32) -> Bool
        var onClose: (Int32) -> Void
    }

    private struct State {
        var readiness: [Int32: Readiness] = [:]
        var exitHandlers: [pid_t: (ExitStatus) -> Void] = [:]
        /// The pidfd in the epoll set for each registered child.
        var exitWatches: [pid_t: Int32] = [:]
        /// Spawns between their clone and the registration of the pid.
        var inFlight = 0
        /// Exits reaped while a spawn was in flight, for pids nobody had registered yet.
        var unclaimed: [pid_t: ExitStatus] = [:]
        var started = false
    }

    private enum Kind: UInt64 { case readiness = 0, exit = 1, sweep = 2 }

    private let epoll: Int32
    private let sweepTimer: Int32
    /// Under `lock` (an NSLock rather than a `Mutex`: the handlers are not `Sendable` — they run
    /// only on this loop's thread — and a `Mutex` cannot hand them out).
    private let lock = NSLock()
    private var tables = State()

    private func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&tables)
    }

    private init() {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        precondition(epoll >= 0, "epoll_create1: \(Errno.last)")
        sweepTimer = psh_timerfd_periodic(1)
        precondition(sweepTimer >= 0, "timerfd_create: \(Errno(rawValue: -sweepTimer))")
    }

    private static func data(_ kind: Kind, _ value: Int32) -> UInt64 {
        kind.rawValue << 32 | UInt64(UInt32(bitPattern: value))
    }

    private func add(_ fd: Int32, kind: Kind, value: Int32, events: UInt32) -> Errno? {
        var event = epoll_event()
        event.events = events
        event.data.u64 = Self.data(kind, value)
        return epoll_ctl(epoll, EPOLL_CTL_ADD, fd, &event) == 0 ? nil : .last
    }

    /// Starts the thread (state lock held).
    private func startIfNeeded(_ state: inout State) {
        guard !state.started else { return }
        state.started = true
        _ = psh_set_child_subreaper()
        _ = add(sweepTimer, kind: .sweep, value: sweepTimer, events: EPOLLIN.rawValue)
        let thread = Thread { [self] in run() }
        thread.name = "podshim-events"
        thread.start()
    }

    // MARK: Readiness

    /// Watches `fd`. `onReadable` reads from it (the fd should be non-blocking); `onClose` runs once,
    /// after `onReadable` returned false or ``unwatch(_:)`` was called, and should close the fd if
    /// the caller owns it.
    public func watch(_ fd: Int32, onReadable: @escaping (Int32) -> Bool, onClose: @escaping (Int32) -> Void) throws(SystemError) {
        let failure: Errno? = withLock { state in
            startIfNeeded(&state)
            state.readiness[fd] = Readiness(onReadable: onReadable, onClose: onClose)
            guard let errno = add(fd, kind: .readiness, value: fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue) else {
                return nil
            }
            state.readiness[fd] = nil
            return errno
        }
        if let failure { throw SystemError("epoll_ctl(ADD)", path: "fd \(fd)", errno: failure) }
    }

    /// Stops watching `fd` (if still watched) and runs its `onClose`.
    public func unwatch(_ fd: Int32) {
        let registration = withLock { state in
            let registration = state.readiness.removeValue(forKey: fd)
            if registration != nil { _ = epoll_ctl(epoll, EPOLL_CTL_DEL, fd, nil) } // the fd is open: it is in the set
            return registration
        }
        registration?.onClose(fd)
    }

    // MARK: Exits

    /// Runs `start` (which must create at most one child and return its pid, or 0 when it created
    /// none) and registers `onExit` for that pid. `onExit` runs on the loop thread, or on the
    /// calling thread when the child was already reaped by the time `start` returned.
    public func spawn<T>(
        _ start: () throws -> (pid: pid_t, value: T), onExit: @escaping (ExitStatus) -> Void
    ) rethrows -> T {
        withLock { state in
            startIfNeeded(&state)
            state.inFlight += 1
        }
        let outcome: (pid: pid_t, value: T)
        do {
            outcome = try start()
        } catch {
            register(pid: 0, onExit: onExit)
            throw error
        }
        register(pid: outcome.pid, onExit: onExit)
        return outcome.value
    }

    private func register(pid: pid_t, onExit: @escaping (ExitStatus) -> Void) {
        let early: ExitStatus? = withLock { state in
            state.inFlight -= 1
            defer { if state.inFlight == 0 { state.unclaimed.removeAll() } } // what no spawn claimed were orphans
            guard pid > 0 else { return nil }
            if let status = state.unclaimed.removeValue(forKey: pid), !Self.isUnreapedChild(pid) {
                return status
            }
            state.exitHandlers[pid] = onExit
            // Normally the child is unreaped and the pidfd names it. If a sweep reaped it a moment ago
            // (it then finds this handler), the pidfd fails or names a stranger that got the pid;
            // that sweep drops the watch by pid either way. Without a pidfd (EMFILE) the exit still
            // arrives with the next one-second sweep.
            let pidfd = psh_pidfd_open(pid)
            if pidfd >= 0 {
                if add(pidfd, kind: .exit, value: pid, events: EPOLLIN.rawValue) == nil {
                    state.exitWatches[pid] = pidfd
                } else {
                    close(pidfd)
                }
            }
            return nil
        }
        if let early { onExit(early) }
    }

    /// Whether `pid` is a child of this process not reaped yet (running or a zombie).
    private static func isUnreapedChild(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0
    }

    /// Reaps every child that has exited and hands each exit to its handler.
    private func sweep() {
        while true {
            var exit = psh_exit()
            guard psh_wait_any_nohang(&exit) == 1 else { return } // 0: none exited; -ECHILD: no children
            let status: ExitStatus = exit.signaled
                ? .signaled(Signal(rawValue: exit.code), coreDumped: exit.core_dumped)
                : .exited(code: exit.code)
            let handler = withLock { state in
                if let pidfd = state.exitWatches.removeValue(forKey: exit.pid) {
                    _ = epoll_ctl(epoll, EPOLL_CTL_DEL, pidfd, nil) // still open: in the set
                    close(pidfd)
                }
                let handler = state.exitHandlers.removeValue(forKey: exit.pid)
                if handler == nil && state.inFlight > 0 { state.unclaimed[exit.pid] = status }
                return handler
            }
            // Otherwise an unregistered pid is an orphan re-parented to us: reaping it was the point.
            handler?(status)
        }
    }

    private func run() {
        // A buffer of our own, read by index, not an `Array` with `&events` and a slice: in this
        // loop that never returns, Swift 6.3.1 -O retains the array once per wake-up without a
        // release, so every `epoll_wait` copied it and leaked the old 800 bytes (one a second when
        // idle, from the sweep timer; ~2.2 KB per pod lifecycle). The loop owns it for ever.
        let events = UnsafeMutableBufferPointer<epoll_event>.allocate(capacity: 64)
        events.initialize(repeating: epoll_event())
        while true {
            let count = epoll_wait(epoll, events.baseAddress, Int32(events.count), -1)
            if count < 0 { continue } // EINTR
            var mustSweep = false
            for index in 0..<Int(count) {
                let event = events[index]
                let value = Int32(bitPattern: UInt32(truncatingIfNeeded: event.data.u64))
                switch Kind(rawValue: event.data.u64 >> 32) {
                case .readiness:
                    guard let registration = withLock({ $0.readiness[value] }) else { continue }
                    if !registration.onReadable(value) { unwatch(value) }
                case .exit:
                    mustSweep = true
                case .sweep:
                    var expirations: UInt64 = 0
                    _ = read(sweepTimer, &expirations, 8) // non-blocking; EAGAIN when another read won
                    mustSweep = true
                case nil:
                    continue
                }
            }
            if mustSweep { sweep() }
        }
    }
}
