import Foundation
import Synchronization
import XCTest
import PodshimSpec
import PodshimSystem
@testable import PodshimRuntime

/// A container that records what it was sent and when, on the test's manual clock.
final class FakeTarget: TerminationTarget {
    struct Sent: Equatable {
        var signal: Signal
        var at: MonotonicInstant
    }

    let name: String
    let stopSignal: Signal
    let preStop: LifecycleHandler?
    private let clock: ManualClock
    private let state = Mutex<(sent: [Sent], running: Bool, refused: Set<Signal>, stragglerKills: Int)>(([], true, [], 0))

    init(_ name: String, clock: ManualClock, stopSignal: Signal = .terminate, preStop: LifecycleHandler? = nil,
         refusing refused: Set<Signal> = []) {
        self.name = name
        self.clock = clock
        self.stopSignal = stopSignal
        self.preStop = preStop
        state.withLock { $0.refused = refused }
    }

    var isRunning: Bool { state.withLock { $0.running } }
    var exitObservedAt: MonotonicInstant? { nil }
    var sent: [Sent] { state.withLock { $0.sent } }
    var signals: [Signal] { sent.map(\.signal) }
    var stragglerKills: Int { state.withLock { $0.stragglerKills } }

    func exit() { state.withLock { $0.running = false } }

    func send(_ signal: Signal) throws(SystemError) -> Bool {
        let refused = state.withLock { $0.refused.contains(signal) }
        if refused { throw SystemError("pidfd_send_signal(\(signal.name))", path: name, errno: .permissionDenied) }
        let now = clock.now()
        return state.withLock { state in
            guard state.running else { return false }
            state.sent.append(Sent(signal: signal, at: now))
            return true
        }
    }

    func killStragglers() throws(SystemError) {
        state.withLock { $0.stragglerKills += 1 }
    }
}

/// A preStop runner whose hooks finish when the test says so.
final class FakePreStop: Sendable {
    private let pending = Mutex<[String: @Sendable (String?) -> Void]>([:])
    private let started = Mutex<[(name: String, budget: Double)]>([])

    var runner: PreStopRunner {
        { [self] _, target, budget, done in
            started.withLock { $0.append((target.name, budget)) }
            pending.withLock { $0[target.name] = done }
        }
    }

    var starts: [(name: String, budget: Double)] { started.withLock { $0 } }

    /// Ends `name`'s hook with `problem` (nil = success).
    func finish(_ name: String, problem: String? = nil) {
        let done = pending.withLock { $0.removeValue(forKey: name) }
        done?(problem)
    }
}

/// Termination on a manual clock and fake containers: every deadline of the graceful flow, to the
/// nanosecond, without root and without sleeping.
final class TerminationCoreTests: XCTestCase {
    private final class EventLog: Sendable {
        let events = Mutex<[Termination.Event]>([])
    }

    private var clock: ManualClock!
    private var log: EventLog!

    override func setUp() {
        clock = ManualClock()
        log = EventLog()
    }

    private func makeTermination(preStop: FakePreStop = FakePreStop()) -> Termination {
        let log = self.log!
        return Termination(clock: clock, preStopRunner: preStop.runner, onEvent: { event in log.events.withLock { $0.append(event) } })
    }

    private func at(_ seconds: Double, from start: MonotonicInstant) -> MonotonicInstant { start.advanced(bySeconds: seconds) }

    private var recorded: [Termination.Event] { log.events.withLock { $0 } }

    func testStopSignalAtOnceAndSIGKILLExactlyAtTheDeadline() {
        let termination = makeTermination()
        let start = clock.now()
        let target = FakeTarget("app", clock: clock)
        termination.begin([target], graceSeconds: 30)
        XCTAssertEqual(target.sent, [.init(signal: .terminate, at: start)])
        clock.advance(to: MonotonicInstant(nanoseconds: at(30, from: start).nanoseconds - 1))
        XCTAssertEqual(target.signals, [.terminate], "nothing more before the deadline")
        clock.advance(to: at(30, from: start))
        XCTAssertEqual(target.sent.last, .init(signal: .kill, at: at(30, from: start)))
        XCTAssertEqual(termination.records.count, 1)
        XCTAssertEqual(termination.records[0].plannedNanoseconds, at(30, from: start).nanoseconds)
        XCTAssertEqual(termination.records[0].sendLatenessMicroseconds, 0)
        XCTAssertFalse(termination.records[0].extended)
    }

    func testTheContainersStopSignalIsUsed() {
        let termination = makeTermination()
        let target = FakeTarget("app", clock: clock, stopSignal: .quit)
        termination.begin([target], graceSeconds: 5)
        XCTAssertEqual(target.signals, [.quit])
    }

    func testAnExitBeforeTheDeadlineCancelsTheKill() {
        let termination = makeTermination()
        let target = FakeTarget("app", clock: clock)
        termination.begin([target], graceSeconds: 30)
        clock.advance(bySeconds: 3)
        target.exit()
        termination.exited("app", at: clock.now())
        XCTAssertEqual(clock.pendingCount, 0, "the SIGKILL timer is cancelled")
        clock.advance(bySeconds: 60)
        XCTAssertEqual(target.signals, [.terminate])
        XCTAssertTrue(termination.records.isEmpty)
    }

    func testGraceZeroKillsAtOnceWithoutStopSignalOrHook() {
        let hooks = FakePreStop()
        let termination = makeTermination(preStop: hooks)
        let start = clock.now()
        let target = FakeTarget("app", clock: clock, preStop: .exec(command: ["true"]))
        termination.begin([target], graceSeconds: 0)
        XCTAssertEqual(target.sent, [.init(signal: .kill, at: start)])
        XCTAssertTrue(hooks.starts.isEmpty)
        XCTAssertEqual(clock.pendingCount, 0)
    }

    func testPreStopRunsFirstAndTheStopSignalFollowsItsEnd() {
        let hooks = FakePreStop()
        let termination = makeTermination(preStop: hooks)
        let start = clock.now()
        let target = FakeTarget("app", clock: clock, preStop: .exec(command: ["drain"]))
        termination.begin([target], graceSeconds: 30)
        XCTAssertTrue(target.sent.isEmpty, "no signal while the hook runs")
        XCTAssertEqual(hooks.starts.first?.budget, 32, "the hook may use the grace period and the extension")
        clock.advance(bySeconds: 5)
        hooks.finish("app")
        XCTAssertEqual(target.sent, [.init(signal: .terminate, at: at(5, from: start))])
        clock.advance(to: at(30, from: start))
        XCTAssertEqual(target.sent.last, .init(signal: .kill, at: at(30, from: start)))
    }

    func testAnOverrunningPreStopGetsTwoSecondsMoreOnce() {
        let hooks = FakePreStop()
        let termination = makeTermination(preStop: hooks)
        let start = clock.now()
        let target = FakeTarget("app", clock: clock, preStop: .exec(command: ["drain"]))
        termination.begin([target], graceSeconds: 10)
        clock.advance(to: at(10, from: start))
        XCTAssertEqual(target.sent, [.init(signal: .terminate, at: at(10, from: start))], "stop signal at the first deadline")
        XCTAssertTrue(recorded.contains { if case .extended("app", 2) = $0 { return true } else { return false } })
        clock.advance(to: MonotonicInstant(nanoseconds: at(12, from: start).nanoseconds - 1))
        XCTAssertEqual(target.signals, [.terminate])
        clock.advance(to: at(12, from: start))
        XCTAssertEqual(target.sent.last, .init(signal: .kill, at: at(12, from: start)))
        XCTAssertEqual(termination.records.first?.extended, true)
        hooks.finish("app") // the hook's late end sends nothing more
        XCTAssertEqual(target.signals, [.terminate, .kill])
    }

    func testAPreStopSleepIsTimedOnTheClock() {
        let hooks = FakePreStop()
        let termination = makeTermination(preStop: hooks)
        let start = clock.now()
        let target = FakeTarget("app", clock: clock, preStop: .sleep(seconds: 4))
        termination.begin([target], graceSeconds: 30)
        XCTAssertTrue(hooks.starts.isEmpty, "a sleep never reaches the runner")
        clock.advance(to: MonotonicInstant(nanoseconds: at(4, from: start).nanoseconds - 1))
        XCTAssertTrue(target.sent.isEmpty)
        clock.advance(to: at(4, from: start))
        XCTAssertEqual(target.sent, [.init(signal: .terminate, at: at(4, from: start))])
    }

    func testAPreStopSleepLongerThanTheGraceIsCutAtTheExtension() {
        let termination = makeTermination()
        let start = clock.now()
        let target = FakeTarget("app", clock: clock, preStop: .sleep(seconds: 600))
        termination.begin([target], graceSeconds: 3)
        clock.advance(bySeconds: 100)
        XCTAssertEqual(target.sent, [.init(signal: .terminate, at: at(3, from: start)), .init(signal: .kill, at: at(5, from: start))])
    }

    func testAShorterSecondRequestWinsAndALongerOneIsIgnored() {
        let termination = makeTermination()
        let start = clock.now()
        let first = FakeTarget("a", clock: clock)
        termination.begin([first], graceSeconds: 30)
        clock.advance(bySeconds: 1)
        termination.begin([first], graceSeconds: 0) // a force delete
        XCTAssertEqual(first.sent, [.init(signal: .terminate, at: start), .init(signal: .kill, at: at(1, from: start))])
        XCTAssertEqual(clock.pendingCount, 0)

        let second = FakeTarget("b", clock: clock)
        let begun = clock.now()
        termination.begin([second], graceSeconds: 10)
        clock.advance(bySeconds: 1)
        termination.begin([second], graceSeconds: 30)
        clock.advance(bySeconds: 100)
        XCTAssertEqual(second.sent, [.init(signal: .terminate, at: begun), .init(signal: .kill, at: at(10, from: begun))],
                       "the stop signal is sent once and the earlier deadline stands")
    }

    func testARefusedStopSignalIsReportedNotRecordedAsSent() {
        let termination = makeTermination()
        let target = FakeTarget("app", clock: clock, refusing: [.terminate])
        termination.begin([target], graceSeconds: 5)
        XCTAssertTrue(target.sent.isEmpty)
        XCTAssertTrue(recorded.contains { if case .signalFailed("app", .terminate, _) = $0 { return true } else { return false } })
        XCTAssertFalse(recorded.contains { if case .stopSignalSent = $0 { return true } else { return false } })
        clock.advance(bySeconds: 5)
        XCTAssertEqual(target.signals, [.kill], "the deadline still kills")
    }

    func testARefusedSIGKILLFallsBackToCgroupKillAndIsNotARecord() {
        let termination = makeTermination()
        let target = FakeTarget("app", clock: clock, refusing: [.kill])
        termination.begin([target], graceSeconds: 0)
        XCTAssertTrue(termination.records.isEmpty)
        XCTAssertTrue(recorded.contains { if case .signalFailed("app", .kill, _) = $0 { return true } else { return false } })
        let deadline = Date().addingTimeInterval(10)
        while target.stragglerKills == 0 && Date() < deadline { usleep(1000) } // cgroup.kill runs off the clock's thread
        XCTAssertEqual(target.stragglerKills, 1)
    }

    func testManyContainersShareOneDeadline() {
        let termination = makeTermination()
        let start = clock.now()
        let targets = (0..<50).map { FakeTarget("c\($0)", clock: clock) }
        termination.begin(targets, graceSeconds: 7)
        clock.advance(bySeconds: 7)
        for target in targets {
            XCTAssertEqual(target.sent, [.init(signal: .terminate, at: start), .init(signal: .kill, at: at(7, from: start))])
        }
        XCTAssertEqual(termination.records.count, 50)
    }

    func testRestartForgetsTheOldTermination() {
        let termination = makeTermination()
        let target = FakeTarget("app", clock: clock)
        termination.begin([target], graceSeconds: 30)
        XCTAssertTrue(termination.isTerminating("app"))
        termination.forget("app")
        XCTAssertFalse(termination.isTerminating("app"))
        XCTAssertEqual(clock.pendingCount, 0)
        clock.advance(bySeconds: 60)
        XCTAssertEqual(target.signals, [.terminate])
    }

    func testOneGraceClampForEveryPath() {
        XCTAssertEqual(TerminationSchedule.clampedGrace(-5), 0)
        XCTAssertEqual(TerminationSchedule.clampedGrace(0), 0)
        XCTAssertEqual(TerminationSchedule.clampedGrace(30), 30)
        XCTAssertEqual(TerminationSchedule.clampedGrace(.max), Double(TerminationSchedule.maximumGraceSeconds))
        // A huge grace still has a deadline in the future that does not wrap.
        let termination = makeTermination()
        let target = FakeTarget("app", clock: clock)
        termination.begin([target], graceSeconds: .max)
        XCTAssertGreaterThan(clock.nextDeadline ?? clock.now(), clock.now().advanced(bySeconds: 9 * 86400 * 365))
        termination.begin([target], graceSeconds: -1) // negative = now
        XCTAssertEqual(target.signals, [.terminate, .kill])
    }
}

/// The manual clock itself: order, cancellation, actions scheduling actions.
final class ManualClockTests: XCTestCase {
    func testRunsDueActionsInDeadlineOrderAtTheirOwnInstants() {
        let clock = ManualClock()
        let start = clock.now()
        let seen = Mutex<[UInt64]>([])
        clock.schedule(at: start.advanced(bySeconds: 2)) { now in seen.withLock { $0.append(now.nanoseconds - start.nanoseconds) } }
        clock.schedule(at: start.advanced(bySeconds: 1)) { now in
            seen.withLock { $0.append(now.nanoseconds - start.nanoseconds) }
            clock.schedule(at: now.advanced(bySeconds: 0.5)) { now in seen.withLock { $0.append(now.nanoseconds - start.nanoseconds) } }
        }
        let cancelled = clock.schedule(at: start.advanced(bySeconds: 1.2)) { _ in XCTFail("cancelled") }
        XCTAssertTrue(clock.cancel(cancelled))
        XCTAssertFalse(clock.cancel(cancelled))
        clock.advance(bySeconds: 3)
        XCTAssertEqual(seen.withLock { $0 }, [1_000_000_000, 1_500_000_000, 2_000_000_000])
        XCTAssertEqual(clock.now(), start.advanced(bySeconds: 3))
    }
}
