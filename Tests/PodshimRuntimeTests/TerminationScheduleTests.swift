import Synchronization
import PodshimRuntime
import PodshimSystem
import XCTest

/// The termination timeline with an injected clock: instants are made up, nothing sleeps.
final class TerminationScheduleTests: XCTestCase {
    private let start = MonotonicInstant(nanoseconds: 5_000_000_000)

    private func at(_ seconds: Double) -> MonotonicInstant { start.advanced(bySeconds: seconds) }

    func testDeadlineIsStartPlusGrace() {
        let schedule = TerminationSchedule(start: start, graceSeconds: 30)
        XCTAssertEqual(schedule.deadline, at(30))
        XCTAssertFalse(schedule.isForced)
        XCTAssertFalse(schedule.extended)
    }

    func testWithoutARunningHookTheDeadlineKills() {
        var schedule = TerminationSchedule(start: start, graceSeconds: 5)
        XCTAssertEqual(schedule.deadlineReached(preStopRunning: false), .kill)
        XCTAssertEqual(schedule.deadline, at(5), "no extension")
    }

    func testAnOverrunningHookGetsTwoSecondsOnce() {
        var schedule = TerminationSchedule(start: start, graceSeconds: 5)
        XCTAssertEqual(schedule.deadlineReached(preStopRunning: true), .signalAndKill(at: at(7)))
        XCTAssertTrue(schedule.extended)
        XCTAssertEqual(schedule.deadline, at(7))
        XCTAssertEqual(schedule.deadlineReached(preStopRunning: true), .kill, "only once")
        XCTAssertEqual(schedule.deadline, at(7))
    }

    func testGraceZeroIsForcedAndNeverExtended() {
        var schedule = TerminationSchedule(start: start, graceSeconds: 0)
        XCTAssertTrue(schedule.isForced)
        XCTAssertEqual(schedule.deadline, start)
        XCTAssertEqual(schedule.deadlineReached(preStopRunning: true), .kill)
    }

    func testNegativeGraceCountsAsZero() {
        XCTAssertTrue(TerminationSchedule(start: start, graceSeconds: -3).isForced)
    }

    func testHugeGraceSaturatesInsteadOfWrapping() {
        let schedule = TerminationSchedule(start: start, graceSeconds: 1e30)
        XCTAssertEqual(schedule.deadline, MonotonicInstant(nanoseconds: .max))
    }

    func testPreStopBudgetIncludesTheExtensionUntilItIsUsed() {
        var schedule = TerminationSchedule(start: start, graceSeconds: 10)
        XCTAssertEqual(schedule.preStopBudget(at: at(4)), 8, accuracy: 1e-9)
        _ = schedule.deadlineReached(preStopRunning: true)
        XCTAssertEqual(schedule.preStopBudget(at: at(11)), 1, accuracy: 1e-9)
        XCTAssertEqual(schedule.preStopBudget(at: at(20)), 0)
    }
}

/// The deadline thread runs actions in deadline order, never before their deadline, and not
/// at all once cancelled. (Behaviour only: how late it runs is measured by hack/bench-termination.sh.)
final class DeadlineTimerTests: XCTestCase {
    func testActionsRunInDeadlineOrderAndNotEarly() {
        let timer = DeadlineTimer()
        let now = MonotonicInstant.now()
        let fired = Mutex<[(Int, MonotonicInstant, MonotonicInstant)]>([])
        let done = expectation(description: "all fired")
        done.expectedFulfillmentCount = 3
        for (label, offset) in [(3, 0.06), (1, 0.02), (2, 0.04)] {
            let deadline = now.advanced(bySeconds: offset)
            timer.schedule(at: deadline) { firedAt in
                fired.withLock { $0.append((label, deadline, firedAt)) }
                done.fulfill()
            }
        }
        wait(for: [done], timeout: 10)
        let all = fired.withLock { $0 }
        XCTAssertEqual(all.map(\.0), [1, 2, 3])
        for (_, deadline, firedAt) in all { XCTAssertGreaterThanOrEqual(firedAt, deadline) }
    }

    func testAnEarlierDeadlineScheduledLaterStillComesFirst() {
        let timer = DeadlineTimer()
        let now = MonotonicInstant.now()
        let order = Mutex<[String]>([])
        let done = expectation(description: "both fired")
        done.expectedFulfillmentCount = 2
        timer.schedule(at: now.advanced(bySeconds: 0.5)) { _ in order.withLock { $0.append("late") }; done.fulfill() }
        timer.schedule(at: now.advanced(bySeconds: 0.01)) { _ in order.withLock { $0.append("early") }; done.fulfill() }
        wait(for: [done], timeout: 10)
        XCTAssertEqual(order.withLock { $0 }, ["early", "late"])
    }

    func testCancelledActionsNeverRun() {
        let timer = DeadlineTimer()
        let now = MonotonicInstant.now()
        let ran = expectation(description: "cancelled action ran")
        ran.isInverted = true
        let token = timer.schedule(at: now.advanced(bySeconds: 0.05)) { _ in ran.fulfill() }
        XCTAssertTrue(timer.cancel(token))
        XCTAssertFalse(timer.cancel(token), "already cancelled")
        let other = expectation(description: "other ran")
        timer.schedule(at: now.advanced(bySeconds: 0.1)) { _ in other.fulfill() }
        wait(for: [ran, other], timeout: 2)
    }

    func testAPastDeadlineRunsAtOnce() {
        let timer = DeadlineTimer()
        let ran = expectation(description: "ran")
        timer.schedule(at: MonotonicInstant(nanoseconds: 1)) { _ in ran.fulfill() }
        wait(for: [ran], timeout: 5)
    }
}
