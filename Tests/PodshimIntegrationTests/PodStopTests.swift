import Foundation
import Glibc
import XCTest

/// Ctrl-C / SIGTERM to `podshim run`: SIGTERM to the containers, SIGKILL when the grace period
/// ends, a second interrupt kills at once. Also: a crashed podshim's pod is cleaned up later.
final class PodStopTests: XCTestCase {
    var harness: PodshimHarness!

    override func setUpWithError() throws { harness = try PodshimHarness.make() }
    override func tearDown() { harness?.tearDown() }

    private func stoppablePod(grace: Int) -> String {
        """
        apiVersion: v1
        kind: Pod
        metadata: { name: stoppable }
        spec:
          restartPolicy: Never
          terminationGracePeriodSeconds: \(grace)
          containers:
          - name: polite
            image: busybox
            command: [sh, -c, "trap 'echo got-term; exit 0' TERM; echo ready; while true; do sleep 0.05; done"]
          - name: stubborn
            image: busybox
            command: [sh, -c, "echo ready; exec sleep 300"]
        """
    }

    func testInterruptSendsSIGTERMThenSIGKILLAfterTheGracePeriod() throws {
        let run = try harness.start(stoppablePod(grace: 1))
        try harness.eventually("containers ready") { run.lines(of: "polite") == ["ready"] && run.lines(of: "stubborn") == ["ready"] }
        run.send(SIGINT)
        XCTAssertEqual(try run.wait(), 1)
        XCTAssertEqual(run.lines(of: "polite"), ["ready", "got-term"])
        XCTAssertTrue(run.stderr.contains("container polite: exit code 0 (Completed)"), run.stderr)
        // sleep is PID 1 of its namespace without a SIGTERM handler: only SIGKILL ends it.
        XCTAssertTrue(run.stderr.contains("container stubborn: SIGKILL ("), run.stderr)
        XCTAssertFalse(run.stderr.contains("container polite: SIGKILL"), run.stderr)
        XCTAssertTrue(run.stderr.contains("container stubborn: exit code 137 (Error, SIGKILL)"), run.stderr)
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testSecondInterruptKillsAtOnce() throws {
        let run = try harness.start(stoppablePod(grace: 300))
        try harness.eventually("containers ready") { run.lines(of: "stubborn") == ["ready"] }
        run.send(SIGTERM)
        try harness.eventually("the stop to begin") { run.stderr.contains("pod terminating") }
        run.send(SIGINT)
        XCTAssertEqual(try run.wait(timeout: 60), 1)
        XCTAssertTrue(run.stderr.contains("killing the pod now"), run.stderr)
        XCTAssertTrue(run.stderr.contains("container stubborn: exit code 137 (Error, SIGKILL)"), run.stderr)
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testPodOfACrashedPodshimIsCleanedUp() throws {
        let uid = "crash-" + UUID().uuidString.prefix(8).lowercased()
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: crash, uid: \(uid) }
            spec:
              restartPolicy: Never
              volumes: [{ name: v, emptyDir: { medium: Memory } }]
              containers:
              - { name: a, image: busybox, command: [sh, -c, "echo ready; exec sleep 300"], volumeMounts: [{ name: v, mountPath: /v }] }
            """)
        try harness.eventually("the container to run") { run.lines(of: "a") == ["ready"] }
        let pids = try harness.recordedPIDs(uid: uid, waitingFor: 1)
        let recorded = [pids.sandbox].compactMap { $0 } + pids.containers.values
        XCTAssertEqual(recorded.count, 2)
        let namespaces = ["net", "ipc", "uts"].compactMap { namespaceLink(pid: pids.sandbox ?? 0, $0) }

        run.send(SIGKILL) // podshim dies without tearing anything down
        _ = try run.wait()
        XCTAssertFalse(harness.leftovers(processes: recorded).isEmpty, "the crash must leave something to clean up")

        let output = try PodshimHarness.shell("\(PodshimHarness.podshim) cleanup \(harness.commonArguments.joined(separator: " "))")
        XCTAssertTrue(output.contains("cleaned up pod crash (\(uid))"), output)
        XCTAssertEqual(harness.leftovers(processes: recorded, namespaces: namespaces), [])
    }
}
