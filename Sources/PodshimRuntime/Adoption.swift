import Foundation
import Glibc
import PodshimProcess
import PodshimSystem

/// Taking processes back after a restart of the daemon: used by the CRI's re-adoption and by the
/// pod service's (``PodRunner`` adopting a recorded pod).
public enum Adoption {
    /// A pidfd for `identity` if that very process still runs: identity checked, pidfd opened,
    /// identity checked again (now pinned by the pidfd).
    public static func reopen(_ identity: ProcessIdentity) -> ProcessHandle? {
        // The process may have exited meanwhile (ESRCH is expected): nil, and the caller reports it gone.
        guard identity.isAlive, let handle = try? ProcessHandle(opening: identity.pid), identity.isAlive else { return nil }
        return handle
    }

    /// The exit status of an exited process that is not podshim's child: a zombie's from /proc
    /// until whoever inherited it reaps it, then the pidfd's (Linux ≥ 6.15). An init that reaps
    /// slowly is waited for, up to 5 s.
    public static func exitStatus(of process: ProcessHandle, identity: ProcessIdentity?) -> ExitStatus? {
        for _ in 0..<250 {
            if let status = identity?.zombieExitStatus { return status }
            switch process.exitStatusIfReaped() {
            case .some(let status): return status
            case .none: return identity?.zombieExitStatus
            case .notYet: usleep(20_000)
            }
        }
        return nil
    }

    /// What a pod's pause process kept of a process that exited while podshim was down: its
    /// pidfd (fd `number` in the keeper, taken back with pidfd_getfd) gives the exit status, the
    /// pause process the exit time (nanoseconds since the epoch).
    public static func keptExit(number: Int32, identity: ProcessIdentity, pause: ProcessHandle, keeper: FDKeeper)
        -> (handle: ProcessHandle, status: ExitStatus?, finishedAt: Int64?)? {
        // No copy (the keeper has none under that number): the caller reports the exit as unknown.
        guard let pidfd = try? FDKeeper.take(number, from: pause) else { return nil }
        let handle = ProcessHandle(pid: identity.pid, pidfd: pidfd)
        let finishedAt = try? keeper.exitTime(of: number) // the pause process did not answer: the time of re-adoption
        return (handle, exitStatus(of: handle, identity: identity), finishedAt ?? nil)
    }

    /// Calls `onExit` (on a Dispatch worker) with the exit status once the adopted `process`
    /// ends; its exit arrives on its pidfd, as it is not podshim's child. `identity` is the
    /// recorded one (the process may be a zombie already, which has no live identity to read).
    public static func watch(_ process: ProcessHandle, identity: ProcessIdentity?,
                             onExit: @escaping @Sendable (ExitStatus?) -> Void) throws(SystemError) {
        try EventLoop.shared.watch(process.pidfd, onReadable: { _ in
            DispatchQueue.global().async {
                onExit(exitStatus(of: process, identity: identity))
            }
            return false
        }, onClose: { _ in }) // the handle owns (and closes) the pidfd
    }
}
