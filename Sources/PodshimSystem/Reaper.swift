import CShims
import Foundation
import Glibc

/// The one owner of `waitpid` in this process.
///
/// podshim is a child subreaper, so orphans of containers come back to it; a reaper that waits
/// only for known pids would leave those as zombies, and two waiters would steal each other's
/// exits. One thread blocks in `waitid(P_ALL)` and hands each exit to whoever registered the pid.
///
/// No exit can be lost: ``spawn(_:onExit:)`` holds the lock from before the clone until the pid is
/// registered, and the reaper takes the same lock before looking a pid up.
public final class Reaper: @unchecked Sendable {
    /// The process-wide reaper. Starting it makes this process a child subreaper.
    public static let shared = Reaper()

    private let condition = NSCondition()
    private var handlers: [pid_t: (ExitStatus) -> Void] = [:]
    private var spawnGeneration: UInt64 = 0
    private var started = false

    private init() {}

    /// Runs `start` (which must create at most one child and return its pid, or 0 when it created
    /// none) with the lock held, and registers `onExit` for that pid. `onExit` runs on the reaper
    /// thread.
    public func spawn<T>(
        _ start: () throws -> (pid: pid_t, value: T), onExit: @escaping (ExitStatus) -> Void
    ) rethrows -> T {
        condition.lock()
        defer { condition.unlock() }
        startIfNeeded()
        let (pid, value) = try start()
        guard pid > 0 else { return value }
        handlers[pid] = onExit
        spawnGeneration &+= 1
        condition.broadcast()
        return value
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
            condition.unlock()
            // An unregistered pid is an orphan re-parented to us: reaping it was the point.
            handler?(status)
        }
    }
}
