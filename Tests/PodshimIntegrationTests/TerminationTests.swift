import Foundation
import Glibc
import PodshimRuntime
import PodshimSystem
import XCTest

/// The graceful termination flow on the real kernel: order and bounds, never tight wall-clock
/// numbers (those are measured by hack/bench-termination.sh).
final class TerminationTests: XCTestCase {
    var harness: PodshimHarness!

    override func setUpWithError() throws { harness = try PodshimHarness.make() }
    override func tearDown() { harness?.tearDown() }

    private var reportPath: String { harness.base + "/kills.json" }

    private func kills() throws -> [Termination.KillRecord] {
        let data = try XCTUnwrap(FileManager.default.contents(atPath: reportPath), "no termination report")
        return try JSONDecoder().decode([Termination.KillRecord].self, from: data)
    }

    /// Starts `manifest`, waits for every listed container to print `ready`, interrupts podshim and
    /// returns the run and the instant of the interrupt.
    private func stop(_ manifest: String, ready containers: [String]) throws -> (PodshimHarness.Run, MonotonicInstant) {
        let run = try harness.start(manifest, extraArguments: ["--termination-report", reportPath])
        try harness.eventually("containers ready") { containers.allSatisfy { run.lines(of: $0).first == "ready" } }
        let interrupted = MonotonicInstant.now()
        run.send(SIGINT)
        _ = try run.wait(timeout: 120)
        return (run, interrupted)
    }

    private static let stubborn = "trap '' TERM; echo ready; while true; do sleep 0.05; done"
    private static let polite = "trap 'echo term; exit 0' TERM; echo ready; while true; do sleep 0.05; done"

    func testPreStopRunsBeforeTheStopSignal() throws {
        let (run, _) = try stop("""
            apiVersion: v1
            kind: Pod
            metadata: { name: prestop }
            spec:
              terminationGracePeriodSeconds: 20
              containers:
              - name: app
                image: busybox
                command: [sh, -c, "\(Self.polite)"]
                lifecycle:
                  preStop: { exec: { command: [sh, -c, "sleep 0.3; echo prestop > /proc/1/fd/1"] } }
            """, ready: ["app"])
        XCTAssertEqual(run.lines(of: "app"), ["ready", "prestop", "term"])
        XCTAssertTrue(run.stderr.contains("container app: preStop done"), run.stderr)
        XCTAssertTrue(run.stderr.contains("container app: exit code 0 (Completed)"), run.stderr)
        XCTAssertEqual(try kills(), [], "it exited on its stop signal: no SIGKILL")
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testAProcessThatExitsOnItsStopSignalIsNeverKilled() throws {
        let (run, _) = try stop("""
            apiVersion: v1
            kind: Pod
            metadata: { name: polite }
            spec:
              terminationGracePeriodSeconds: 2
              containers:
              - name: term
                image: busybox
                command: [sh, -c, "\(Self.polite)"]
              - name: usr1
                image: busybox
                command: [sh, -c, "trap 'echo usr1; exit 0' USR1; trap '' TERM; echo ready; while true; do sleep 0.05; done"]
                lifecycle: { stopSignal: SIGUSR1 }
            """, ready: ["term", "usr1"])
        XCTAssertEqual(run.lines(of: "term"), ["ready", "term"])
        XCTAssertEqual(run.lines(of: "usr1"), ["ready", "usr1"], "lifecycle.stopSignal replaces SIGTERM")
        XCTAssertFalse(run.stderr.contains(": SIGKILL ("), run.stderr)
        XCTAssertEqual(try kills(), [])
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testAProcessIgnoringSIGTERMIsKilledNoEarlierThanItsDeadline() throws {
        let (run, interrupted) = try stop("""
            apiVersion: v1
            kind: Pod
            metadata: { name: stubborn }
            spec:
              terminationGracePeriodSeconds: 2
              containers:
              - { name: app, image: busybox, command: [sh, -c, "\(Self.stubborn)"] }
            """, ready: ["app"])
        XCTAssertTrue(run.stderr.contains("container app: exit code 137 (Error, SIGKILL)"), run.stderr)
        let records = try kills()
        XCTAssertEqual(records.map(\.container), ["app"])
        let kill = try XCTUnwrap(records.first)
        XCTAssertFalse(kill.extended)
        // The deadline is 2 s after the interrupt reached podshim (after we sent it), and the kill
        // left at or after the deadline.
        XCTAssertGreaterThanOrEqual(kill.plannedNanoseconds, interrupted.advanced(bySeconds: 2).nanoseconds)
        XCTAssertGreaterThanOrEqual(kill.sentNanoseconds, kill.plannedNanoseconds)
        XCTAssertGreaterThanOrEqual(try XCTUnwrap(kill.exitObservedNanoseconds), kill.sentNanoseconds)
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testTheTwoSecondExtensionHappensExactlyWhenPreStopOverruns() throws {
        let (run, interrupted) = try stop("""
            apiVersion: v1
            kind: Pod
            metadata: { name: overrun }
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: slow
                image: busybox
                command: [sh, -c, "\(Self.stubborn)"]
                lifecycle: { preStop: { exec: { command: [sleep, "30"] } } }
              - name: quick
                image: busybox
                command: [sh, -c, "\(Self.stubborn)"]
                lifecycle: { preStop: { exec: { command: ["true"] } } }
            """, ready: ["slow", "quick"])
        let records = Dictionary(uniqueKeysWithValues: try kills().map { ($0.container, $0) })
        let slow = try XCTUnwrap(records["slow"]), quick = try XCTUnwrap(records["quick"])
        XCTAssertTrue(slow.extended, run.stderr)
        XCTAssertFalse(quick.extended, run.stderr)
        XCTAssertTrue(run.stderr.contains("container slow: preStop still running at the end of the grace period: 2 s more"), run.stderr)
        XCTAssertFalse(run.stderr.contains("container quick: preStop still running"), run.stderr)
        // quick: killed at the grace deadline; slow: exactly 2 s later (same start instant).
        XCTAssertGreaterThanOrEqual(quick.plannedNanoseconds, interrupted.advanced(bySeconds: 1).nanoseconds)
        XCTAssertEqual(slow.plannedNanoseconds, quick.plannedNanoseconds + 2_000_000_000)
        XCTAssertGreaterThanOrEqual(slow.sentNanoseconds, slow.plannedNanoseconds)
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testAForkedChildIgnoringSIGTERMLeavesNothingBehind() throws {
        // With a shared PID namespace the container's PID 1 dying does not take the child with it:
        // the container's cgroup does (cgroup.kill).
        let (run, _) = try stop("""
            apiVersion: v1
            kind: Pod
            metadata: { name: forker }
            spec:
              shareProcessNamespace: true
              terminationGracePeriodSeconds: 30
              containers:
              - name: parent
                image: busybox
                command: [sh, -c, "(trap '' TERM; exec sleep 300) & trap 'exit 0' TERM; echo ready; while true; do sleep 0.05; done"]
            """, ready: ["parent"])
        XCTAssertTrue(run.stderr.contains("container parent: exit code 0 (Completed)"), run.stderr)
        XCTAssertEqual(try kills(), [], "the main process exited on SIGTERM")
        XCTAssertEqual(harness.leftovers(), [])
    }
}
