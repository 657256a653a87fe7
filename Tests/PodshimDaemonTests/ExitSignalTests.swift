@testable import PodshimDaemon
import XCTest

/// ExitSignal: waits end when it fires or at their timeout, and firing leaves no timer pending
/// (a daemon waiting on every stop used to keep one Dispatch timer per wait until its deadline).
final class ExitSignalTests: XCTestCase {
    func testFiringWakesWaitersAndCancelsTheirTimers() async {
        let signal = ExitSignal()
        async let first = signal.wait(seconds: 3600)
        async let second = signal.wait(seconds: 3600)
        while signal.pendingTimeouts < 2 { await Task.yield() }
        signal.fire()
        let results = await [first, second]
        XCTAssertEqual(results, [true, true])
        XCTAssertEqual(signal.pendingTimeouts, 0)
        let late = await signal.wait(seconds: 3600)
        XCTAssertTrue(late, "a wait after the exit returns at once")
    }

    func testTimeoutEndsTheWaitWithFalse() async {
        let signal = ExitSignal()
        let result = await signal.wait(seconds: 0.01)
        XCTAssertFalse(result)
        XCTAssertEqual(signal.pendingTimeouts, 0)
    }
}
