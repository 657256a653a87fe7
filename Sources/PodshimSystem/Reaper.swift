import CShims
import Foundation
import Glibc

/// The one owner of `waitpid` in this process.
///
/// podshim is a child subreaper, so orphans of containers come back to it; a reaper that waits
/// only for known pids would leave those as zombies, and two waiters would steal each other's
/// exits. One thread blocks in `waitid(P_ALL)` and hands each exit to whoever registered the pid.
///
/// No exit can be lost, and no lock is held while a child sets up: ``spawn(_:onExit:)`` counts
/// itself in flight around the clone; an exit the reaper sees for a pid nobody registered while a
/// spawn is in flight is kept, and the spawn that then registers that pid takes it, after checking
/// with `waitid(WNOWAIT)` that its own child is really gone (a kept exit of a recycled pid is
/// never handed to a live child). With no spawn in flight an unregistered pid is an orphan.
public final class Reaper: @unchecked Sendable { // all state below is guarded by `condition`
    /// The process-wide reaper. Starting it makes this process a child subreaper.
    public static let shared = Reaper()

    private let condition = NSCondition()
    private var handlers: [pid_t: (ExitStatus) -> Void] = [:]
    private var spawnGeneration: UInt64 = 0
    private var started = false
    /// Spawns between their clone and the registration of the pid.
    private var inFlight = 0
    /// Exits reaped while a spawn was in flight, for pids nobody had registered yet.
    private var unclaimed: [pid_t: ExitStatus] = [:]

    private init() {}

    /// Runs `start` (which must create at most one child and return its pid, or 0 when it created
    /// none) and registers `onExit` for that pid. `onExit` runs on the reaper thread, or on the
    /// calling thread when the child was already reaped by the time `start` returned.
    public func spawn<T>(
        _ start: () throws -> (pid: pid_t, value: T), onExit: @escaping (ExitStatus) -> Void
    ) rethrows -> T {
        condition.lock()
        startIfNeeded()
        inFlight += 1
        condition.unlock()
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
        var early: ExitStatus?
        condition.lock()
        inFlight -= 1
        if pid > 0 {
            if let status = unclaimed.removeValue(forKey: pid), !Self.isUnreapedChild(pid) {
                early = status
            } else {
                handlers[pid] = onExit
            }
            spawnGeneration &+= 1
            condition.broadcast()
        }
        if inFlight == 0 { unclaimed.removeAll() } // what no spawn claimed were orphans
        condition.unlock()
        if let early { onExit(early) }
    }

    /// Whether `pid` is a child of this process not reaped yet (running or a zombie).
    private static func isUnreapedChild(_ pid: pid_t) -> Bool {
        var info = siginfo_t()
        return waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0
    }

    private func startIfNeeded() {
        guard !started else { return }
        started = true
        _ = psh_set_child_subreaper()
        let thread = Thread { [self] in run() }
        thread.name = "podshim-reaper"
        thread.start()
    }

    private func run() {
        while true {
            condition.lock()
            let generation = spawnGeneration
            condition.unlock()

            var exit = psh_exit()
            let result = psh_wait_any(&exit)
            if result == -ECHILD {
                // Nothing to wait for: sleep until the next spawn.
                condition.lock()
                while spawnGeneration == generation { condition.wait() }
                condition.unlock()
                continue
            }
            guard result == 0 else { continue }
            let status: ExitStatus = exit.signaled
                ? .signaled(Signal(rawValue: exit.code), coreDumped: exit.core_dumped)
                : .exited(code: exit.code)
            condition.lock()
            let handler = handlers.removeValue(forKey: exit.pid)
            if handler == nil && inFlight > 0 { unclaimed[exit.pid] = status }
            condition.unlock()
            // Otherwise an unregistered pid is an orphan re-parented to us: reaping it was the point.
            handler?(status)
        }
    }
}
