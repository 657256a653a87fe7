import Foundation
import Glibc
import XCTest

/// Probes, restarts and phases of `podshim run` on the real kernel: order and outcomes, never
/// timing bounds.
final class ProbeTests: XCTestCase {
    var harness: PodshimHarness!

    override func setUpWithError() throws { harness = try PodshimHarness.make() }
    override func tearDown() { harness?.tearDown() }

    private func stopAndWait(_ run: PodshimHarness.Run) throws {
        run.send(SIGINT)
        _ = try run.wait(timeout: 60)
    }

    private func index(of text: String, in output: String) -> String.Index? {
        output.range(of: text)?.lowerBound
    }

    func testHTTPReadinessBecomesReadyOnlyAfterTheServerListens() throws {
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: web }
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: web
                image: busybox
                command: [sh, -c, "mkdir -p /www; echo hi > /www/index.html; echo starting; sleep 2; exec httpd -f -p 8080 -h /www"]
                ports: [{ name: http, containerPort: 8080 }]
                readinessProbe: { httpGet: { path: /index.html, port: http }, periodSeconds: 1, failureThreshold: 1 }
            """)
        try harness.eventually(timeout: 30, "the container to become ready") { run.stderr.contains("container web: ready") }
        let output = run.stderr
        try stopAndWait(run)
        let failed = try XCTUnwrap(index(of: "container web: readiness probe failed", in: output), output)
        let ready = try XCTUnwrap(index(of: "container web: ready", in: output))
        XCTAssertLessThan(failed, ready, "probed before it listened, then ready")
        XCTAssertTrue(output.contains("pod ready"), output)
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testFailingLivenessRestartsWithGrowingBackOff() throws {
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: flaky }
            spec:
              terminationGracePeriodSeconds: 1
              containers:
              - name: flaky
                image: busybox
                command: [sh, -c, "echo run; touch /tmp/alive; (sleep 2; rm /tmp/alive) & while true; do sleep 0.2; done"]
                livenessProbe: { exec: { command: [test, -e, /tmp/alive] }, periodSeconds: 1, failureThreshold: 1 }
            """)
        try harness.eventually(timeout: 60, "the second back-off") { run.stderr.contains("back-off 20s before restart 2") }
        let output = run.stderr
        try stopAndWait(run)
        XCTAssertTrue(output.contains("container flaky: liveness probe failed 1 times: stopping it"), output)
        XCTAssertTrue(output.contains("back-off 10s before restart 1"), output)
        XCTAssertTrue(output.contains("container flaky restarted (restart 1)"), output)
        XCTAssertEqual(run.lines(of: "flaky").filter { $0 == "run" }.count, 2, "the first run and one restart")
        let logs = try FileManager.default.subpathsOfDirectory(atPath: harness.logDir).filter { $0.hasSuffix("flaky/1.log") }
        XCTAssertEqual(logs.count, 1, "the restart logs to attempt 1")
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testOnFailureRestartsTheFailingContainerOnly() throws {
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: onfailure }
            spec:
              restartPolicy: OnFailure
              containers:
              - { name: fails, image: busybox, command: [sh, -c, "echo run; exit 3"] }
              - { name: works, image: busybox, command: [sh, -c, "echo run; exit 0"] }
            """)
        try harness.eventually(timeout: 40, "the failing container to restart") { run.lines(of: "fails").count >= 2 }
        let output = run.stderr
        try stopAndWait(run)
        XCTAssertTrue(output.contains("container fails: back-off 10s before restart 1"), output)
        XCTAssertFalse(output.contains("container works: back-off"), output)
        XCTAssertEqual(run.lines(of: "works"), ["run"], "a success is not restarted under OnFailure")
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testTCPProbeOnAClosedPortFails() throws {
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: tcp }
            spec:
              terminationGracePeriodSeconds: 0
              containers:
              - name: app
                image: busybox
                command: [sleep, "300"]
                readinessProbe: { tcpSocket: { port: 9999 }, periodSeconds: 1, failureThreshold: 1 }
            """)
        try harness.eventually("a failed probe") { run.stderr.contains("container app: readiness probe failed") }
        let output = run.stderr
        try stopAndWait(run)
        XCTAssertTrue(output.contains("connect 127.0.0.1:9999: ECONNREFUSED"), output)
        XCTAssertFalse(output.contains("container app: ready"), output)
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testPhaseSucceededFailedAndCrashLooping() throws {
        let (succeededStatus, succeeded) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: ok }
            spec:
              restartPolicy: Never
              containers:
              - { name: a, image: busybox, command: ["true"] }
              - { name: b, image: busybox, command: [sh, -c, "sleep 0.3"] }
            """)
        XCTAssertEqual(succeededStatus, 0)
        XCTAssertTrue(succeeded.stderr.contains("pod phase: Succeeded"), succeeded.stderr)

        let (failedStatus, failed) = try harness.run("""
            apiVersion: v1
            kind: Pod
            metadata: { name: bad }
            spec:
              restartPolicy: Never
              containers:
              - { name: a, image: busybox, command: ["true"] }
              - { name: b, image: busybox, command: [sh, -c, "exit 4"] }
            """)
        XCTAssertEqual(failedStatus, 1)
        XCTAssertTrue(failed.stderr.contains("pod phase: Failed"), failed.stderr)
        XCTAssertFalse(failed.stderr.contains("pod phase: Succeeded"), failed.stderr)

        let looping = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: loop }
            spec:
              terminationGracePeriodSeconds: 0
              containers:
              - { name: a, image: busybox, command: [sh, -c, "exit 1"] }
            """)
        try harness.eventually("the back-off") { looping.stderr.contains("CrashLoopBackOff") }
        let loopingOutput = looping.stderr
        try stopAndWait(looping)
        XCTAssertTrue(loopingOutput.contains("pod phase: Running"), loopingOutput)
        XCTAssertFalse(loopingOutput.contains("pod phase: Failed"), "still restarting: Running, not Failed\n" + loopingOutput)
        XCTAssertEqual(harness.leftovers(), [])
    }

    func testHundredsOfProbesLeakNeitherProcessesNorDescriptors() throws {
        var containers = ""
        for index in 0..<5 {
            containers += """
                  - name: c\(index)
                    image: busybox
                    command: [sh, -c, "exec httpd -f -p 80\(index)0 -h /"]
                    livenessProbe: { exec: { command: ["true"] }, periodSeconds: 1 }
                    readinessProbe: { httpGet: { path: /etc/hostname, port: 80\(index)0 }, periodSeconds: 1 }
                    startupProbe: { tcpSocket: { port: 80\(index)0 }, periodSeconds: 1 }

                """
        }
        let run = try harness.start("""
            apiVersion: v1
            kind: Pod
            metadata: { name: many }
            spec:
              terminationGracePeriodSeconds: 0
              containers:
            \(containers)
            """)
        try harness.eventually("the pod to be ready") { run.stderr.contains("pod ready") }
        let pid = run.process.processIdentifier
        func descriptors() -> Int { ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count }
        func children() -> Int {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { entry in
                guard let stat = try? String(contentsOfFile: "/proc/\(entry)/stat", encoding: .utf8),
                      let close = stat.lastIndex(of: ")") else { return false }
                let fields = stat[stat.index(after: close)...].split(separator: " ")
                return fields.count > 1 && fields[1] == "\(pid)"
            }.count
        }
        sleep(2)
        func failures() -> Int { run.stderr.components(separatedBy: "probe failed").count - 1 }
        let before = (descriptors(), children(), failures())
        sleep(10) // 5 containers × 2 probes a second: about 100 probe runs
        let after = (descriptors(), children(), failures())
        let output = run.stderr
        try stopAndWait(run)
        XCTAssertEqual(after.2, before.2, "no probe failed once the pod was ready\n" + output)
        // Probes in flight at either instant may hold a pipe, a socket, an exec'd process and its
        // pidfds (podshim's and the event loop's): a leak is growth beyond those, never a drop.
        XCTAssertLessThanOrEqual(after.0, before.0 + 12, "descriptors \(before.0) → \(after.0)")
        XCTAssertLessThanOrEqual(after.1, before.1 + 5, "children \(before.1) → \(after.1)")
        XCTAssertEqual(harness.leftovers(), [])
    }
}
