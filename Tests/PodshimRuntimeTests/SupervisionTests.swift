import PodshimRuntime
import PodshimSpec
import PodshimSystem
import XCTest

/// Probe scheduling and thresholds, back-off and phases, with made-up instants (an injected clock).
final class ProbeTrackerTests: XCTestCase {
    private let started = MonotonicInstant(nanoseconds: 1_000_000_000_000)
    private func at(_ seconds: Double) -> MonotonicInstant { started.advanced(bySeconds: seconds) }
    private let exec = Probe.Handler.exec(command: ["true"])

    func testFirstRunAfterTheInitialDelayThenEveryPeriod() {
        var tracker = ProbeTracker(kind: .liveness, probe: Probe(handler: exec, initialDelaySeconds: 5, periodSeconds: 10),
                                   containerStarted: started)
        XCTAssertEqual(tracker.nextRun, at(5))
        tracker.record(success: true, at: at(5.2))
        XCTAssertEqual(tracker.nextRun, at(15.2))
    }

    func testFailureNeedsFailureThresholdConsecutiveFailures() {
        var tracker = ProbeTracker(kind: .liveness, probe: Probe(handler: exec, failureThreshold: 3), containerStarted: started)
        XCTAssertEqual(tracker.status, .unknown)
        XCTAssertNil(tracker.record(success: false, at: at(1)))
        XCTAssertNil(tracker.record(success: false, at: at(2)))
        XCTAssertNil(tracker.record(success: true, at: at(3)).flatMap { $0 == .failure ? $0 : nil }, "a success resets the count")
        XCTAssertNil(tracker.record(success: false, at: at(4)))
        XCTAssertNil(tracker.record(success: false, at: at(5)))
        XCTAssertEqual(tracker.record(success: false, at: at(6)), .failure)
        XCTAssertEqual(tracker.consecutiveFailures, 3)
        XCTAssertNil(tracker.record(success: false, at: at(7)), "no change: still failing")
    }

    func testReadinessNeedsSuccessThresholdSuccesses() {
        var tracker = ProbeTracker(kind: .readiness, probe: Probe(handler: exec, successThreshold: 2, failureThreshold: 1),
                                   containerStarted: started)
        XCTAssertNil(tracker.record(success: true, at: at(1)))
        XCTAssertEqual(tracker.record(success: true, at: at(2)), .success)
        XCTAssertEqual(tracker.record(success: false, at: at(3)), .failure)
        XCTAssertNil(tracker.record(success: true, at: at(4)))
        XCTAssertEqual(tracker.record(success: true, at: at(5)), .success)
    }

    func testResetStartsOver() {
        var tracker = ProbeTracker(kind: .liveness, probe: Probe(handler: exec, initialDelaySeconds: 3, failureThreshold: 1),
                                   containerStarted: started)
        tracker.record(success: false, at: at(3))
        XCTAssertEqual(tracker.status, .failure)
        tracker.reset(containerStarted: at(100))
        XCTAssertEqual(tracker.status, .unknown)
        XCTAssertEqual(tracker.nextRun, at(103))
        XCTAssertEqual(tracker.runs, 0)
    }
}

final class RestartBackoffTests: XCTestCase {
    func testTenSecondsDoublingToFiveMinutes() {
        var backoff = RestartBackoff()
        let delays = (0..<8).map { _ in backoff.delay(afterRunning: 1) }
        XCTAssertEqual(delays, [10, 20, 40, 80, 160, 300, 300, 300])
    }

    func testResetAfterTenMinutesOfRunning() {
        var backoff = RestartBackoff()
        _ = backoff.delay(afterRunning: 1)
        _ = backoff.delay(afterRunning: 1)
        XCTAssertEqual(backoff.delay(afterRunning: 599), 40)
        XCTAssertEqual(backoff.delay(afterRunning: 600), 10, "ran 10 minutes: back to the start")
        XCTAssertEqual(backoff.delay(afterRunning: 1), 20)
    }
}

final class PodPhaseTests: XCTestCase {
    func testPhases() {
        XCTAssertEqual(PodPhase.of([.waiting, .waiting]), .pending)
        XCTAssertEqual(PodPhase.of([.running, .waiting]), .running)
        XCTAssertEqual(PodPhase.of([.terminated(exitCode: 0, willRestart: false), .running]), .running)
        XCTAssertEqual(PodPhase.of([.terminated(exitCode: 0, willRestart: false), .terminated(exitCode: 0, willRestart: false)]), .succeeded)
        XCTAssertEqual(PodPhase.of([.terminated(exitCode: 0, willRestart: false), .terminated(exitCode: 2, willRestart: false)]), .failed)
        XCTAssertEqual(PodPhase.of([.terminated(exitCode: 1, willRestart: true)]), .running, "crash-looping is Running")
        XCTAssertEqual(PodPhase.of([.running, .unknown]), .unknown)
    }

    func testRestartPolicies() {
        XCTAssertTrue(PodPhase.restarts(.always, exitCode: 0))
        XCTAssertTrue(PodPhase.restarts(.always, exitCode: 1))
        XCTAssertFalse(PodPhase.restarts(.onFailure, exitCode: 0))
        XCTAssertTrue(PodPhase.restarts(.onFailure, exitCode: 137))
        XCTAssertFalse(PodPhase.restarts(.never, exitCode: 1))
    }
}
