import Foundation
import Glibc
import XCTest

/// What must show, 3: exit codes propagate and a container that cannot start names the stage.
final class PodExitTests: XCTestCase {
    var harness: PodshimHarness!

    override func setUpWithError() throws { harness = try PodshimHarness.make() }
    override func tearDown() { harness?.tearDown() }

    func testExitCodesPropagate() throws {
        let (status, run) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: exits }
            spec:
              restartPolicy: Never
              shareProcessNamespace: true
              containers:
              - { name: zero, image: busybox, command: ["true"] }
              - { name: three, image: busybox, command: [sh, -c, "exit 3"] }
              - { name: killed, image: busybox, command: [sh, -c, "kill -9 $$"] }
            """)
        XCTAssertEqual(status, 1, "one container failed, so podshim fails")
        XCTAssertTrue(run.stderr.contains("container zero: exit code 0 (Completed)"), run.stderr)
        XCTAssertTrue(run.stderr.contains("container three: exit code 3 (Error)"), run.stderr)
        XCTAssertTrue(run.stderr.contains("container killed: exit code 137 (Error, SIGKILL)"), run.stderr)
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testTTYAndStdinContainersRun() throws {
        let (status, run) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: interactive }
            spec:
              restartPolicy: Never
              containers:
              - name: term
                image: busybox
                tty: true
                command: [sh, -c, "[ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo on-a-terminal; echo TERM=$TERM; seq 1 2000 | tail -1"]
              - name: input
                image: busybox
                stdin: true
                stdinOnce: true
                command: [sh, -c, "[ -t 0 ] || echo stdin-is-a-pipe"]
            """)
        XCTAssertEqual(status, 0, run.stderr)
        // A terminal ends its lines with CR LF (onlcr); the CR stays, as in containerd's logs.
        XCTAssertEqual(run.lines(of: "term").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }, ["on-a-terminal", "TERM=xterm", "2000"])
        XCTAssertEqual(run.lines(of: "input"), ["stdin-is-a-pipe"])
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testAllSucceededExitsZero() throws {
        let example = try String(contentsOfFile: PodshimHarness.packageRoot + "/examples/web.yaml", encoding: .utf8)
        let (status, run) = try harness.run(example)
        XCTAssertEqual(status, 0, run.stderr)
        XCTAssertEqual(run.lines(of: "client"), ["hello from web"])
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testMissingBinaryNamesTheStageAndCleansUpThePod() throws {
        let uid = "missing-" + UUID().uuidString.prefix(8).lowercased()
        let (status, run) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: missing, uid: \(uid) }
            spec:
              restartPolicy: Never
              terminationGracePeriodSeconds: 1
              containers:
              - { name: sleeper, image: busybox, command: [sleep, "300"] }
              - { name: client, image: busybox, command: [/bin/nope] }
            """)
        XCTAssertEqual(status, 1)
        XCTAssertTrue(run.stderr.contains("container client: execve /bin/nope: ENOENT"), run.stderr)
        XCTAssertTrue(run.stderr.contains("container client: exit code 127 (ContainerCannotRun: execve /bin/nope: ENOENT)"), run.stderr)
        XCTAssertTrue(run.stderr.contains("container sleeper: exit code 137"), "the rest of the pod is stopped: \(run.stderr)")
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testSetupFailuresNameTheirStage() throws {
        let cases: [(String, String)] = [
            ("command: [nope]", "execve nope: ENOENT"),
            ("command: [\"true\"]\n    workingDir: /does/not/exist", "chdir /does/not/exist: ENOENT"),
            ("command: [/etc/passwd]", "execve /etc/passwd: EACCES"),
        ]
        for (fields, expected) in cases {
            let (status, run) = try harness.run("""
                apiVersion: v1
                kind: Pod
                metadata: { name: stages }
                spec:
                  restartPolicy: Never
                  containers:
                  - name: c
                    image: busybox
                    \(fields)
                """)
            XCTAssertEqual(status, 1, expected)
            XCTAssertTrue(run.stderr.contains("container c: \(expected)"), "expected \(expected) in:\n\(run.stderr)")
            XCTAssertTrue(run.stderr.contains("container c: exit code 127 (ContainerCannotRun: \(expected))"),
                          "the failed container's exit must be accounted for:\n\(run.stderr)")
        }
        XCTAssertEqual(harness.leftovers(), [])
    }
}
