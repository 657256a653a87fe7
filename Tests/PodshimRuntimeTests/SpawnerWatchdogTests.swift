import XCTest
import Glibc
import Synchronization
@testable import PodshimProcess
import PodshimSystem

/// The setup timeout on a real child (no root needed): the spawning thread is suspended in the
/// clone (CLONE_VFORK) while the child sets up, so only the watchdog on the timer thread can end
/// a setup that hangs. The child here hangs opening a FIFO nobody reads, as a write of a sysctl.
final class SpawnerWatchdogTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "/podshim-watchdog-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory) // a temp dir of this test
    }

    private final class Exit: Sendable {
        let status = Mutex<ExitStatus?>(nil)
        let signal = DispatchSemaphore(value: 0)
        func set(_ value: ExitStatus) {
            status.withLock { $0 = value }
            signal.signal()
        }
    }

    func testAChildHangingInItsSetupIsKilledWhenTheTimeoutExpires() throws {
        let fifo = directory + "/fifo"
        XCTAssertEqual(mkfifo(fifo, 0o600), 0)
        var plan = ProcessPlan(argv: ["/bin/true"])
        plan.sysctls = [FileWrite(path: fifo, value: "1")]
        let exit = Exit()
        XCTAssertThrowsError(try Spawner.spawn(plan, sandbox: nil, stdio: .init(), setupTimeout: 0.2,
                                               onExit: { exit.set($0) })) { error in
            let spawnError = error as? SpawnError
            XCTAssertEqual(spawnError?.stage, "setup")
            XCTAssertEqual(spawnError?.errno, .timedOut)
        }
        XCTAssertEqual(exit.signal.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(exit.status.withLock { $0 }, .signaled(.kill, coreDumped: false))
    }

    func testAChildThatExecsInTimeIsNotKilledLater() throws {
        let exit = Exit()
        let process = try Spawner.spawn(ProcessPlan(argv: ["/bin/sleep", "0.5"]), sandbox: nil, stdio: .init(),
                                        setupTimeout: 0.1, onExit: { exit.set($0) })
        _ = process
        XCTAssertEqual(exit.signal.wait(timeout: .now() + 30), .success)
        XCTAssertEqual(exit.status.withLock { $0 }, .exited(code: 0))
    }
}
