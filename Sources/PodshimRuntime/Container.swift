import Foundation
import PodshimSystem

/// One container of a pod: its plan, its process and its state.
///
/// State transitions are made by the pod's controlling thread only (start, then the exit event it
/// reads from the pod's queue), so they always happen in order; the lock protects readers.
public final class Container: @unchecked Sendable {
    public let index: Int
    public let name: String
    public let plan: ProcessPlan

    private let lock = NSLock()
    private var machine = ContainerStateMachine()
    private var processHandle: ProcessHandle?
    var output: ContainerOutput?

    init(index: Int, name: String, plan: ProcessPlan) {
        self.index = index
        self.name = name
        self.plan = plan
    }

    public var state: ContainerStateMachine.State { lock.withLock { machine.state } }
    public var termination: ContainerTermination? { lock.withLock { machine.termination } }
    public var isRunning: Bool { lock.withLock { machine.isRunning } }
    /// The main process while the container runs (and until its exit is processed).
    public var process: ProcessHandle? { lock.withLock { processHandle } }

    func markStarted(_ process: ProcessHandle) {
        lock.withLock {
            processHandle = process
            try? machine.started(pid: process.pid)
        }
    }

    func markFailedToStart(_ message: String) {
        lock.withLock { try? machine.failedToStart(message) }
    }

    func markExited(_ status: ExitStatus) {
        lock.withLock {
            try? machine.exited(status)
            processHandle = nil
        }
    }

    /// Sends `signal` to the main process. False when it is not running (or already gone).
    @discardableResult
    public func send(_ signal: Signal) -> Bool {
        guard let process else { return false }
        return (try? process.send(signal)) ?? false
    }
}
