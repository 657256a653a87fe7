@testable import PodshimDaemon
import PodshimSystem
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

    func testTheTimeoutRunsOnTheSignalsClock() async {
        let clock = ManualClock()
        let signal = ExitSignal(clock: clock)
        let waiter = Task { await signal.wait(seconds: 10) }
        while clock.pendingCount == 0 { await Task.yield() }
        clock.advance(bySeconds: 9.999)
        XCTAssertEqual(signal.pendingTimeouts, 1, "still waiting before the timeout")
        clock.advance(bySeconds: 0.001)
        let result = await waiter.value
        XCTAssertFalse(result)
        XCTAssertEqual(clock.pendingCount, 0)
        signal.fire()
        let after = await signal.wait(seconds: 10)
        XCTAssertTrue(after)
        XCTAssertEqual(clock.pendingCount, 0, "a wait after firing schedules nothing")
    }
}
