import Foundation
import Synchronization
import XCTest
import PodshimSpec
import PodshimSystem
@testable import PodshimRuntime
import PodshimTesting

/// Supervisor (restart policy, crash-loop back-off, probes, readiness) through the fake launcher
/// on a manual clock: no root, no process, no sleeping.
final class SupervisorTests: XCTestCase {
    private var clock: ManualClock!
    private var launcher: FakeLauncher!

    override func setUp() {
        clock = ManualClock()
        launcher = FakeLauncher(clock: clock)
    }

    private func makePod(_ policy: RestartPolicy, probes: [ProbeKind: Probe] = [:], containers: Int = 1) throws -> Pod {
        let specs = (0..<containers).map { index -> ContainerSpec in
            var container = ContainerSpec(name: "c\(index)", image: "busybox", args: ["sleep", "1"])
            container.probes = probes
            return container
        }
        let spec = PodSpec(name: "web", restartPolicy: policy, terminationGracePeriodSeconds: 30, containers: specs)
        let layout = Fixture.layout(spec)
        let plans = try specs.indices.map {
            try ContainerPlanner(pod: spec, layout: layout).plan(containerAt: $0, imageRootfs: "/images/busybox/rootfs")
        }
        return Pod(spec: spec, layout: layout, configuration: Fixture.configuration, plans: plans, cgroupHierarchy: nil)
    }

    private func makeSupervisor(_ pod: Pod) -> (Supervisor, Termination) {
        let termination = Termination(clock: clock, preStopRunner: { _, _, _, done in done(nil) })
        let printer = TerminalPrinter(names: pod.containers.map(\.name), messages: { _ in })
        return (Supervisor(pod: pod, termination: termination, printer: printer, launcher: launcher), termination)
    }

    /// A pod whose containers all run (fake) and are supervised from now.
    private func runningPod(_ policy: RestartPolicy, probes: [ProbeKind: Probe] = [:], containers: Int = 1) throws
        -> (pod: Pod, supervisor: Supervisor, termination: Termination)
    {
        let pod = try makePod(policy, probes: probes, containers: containers)
        let (supervisor, termination) = makeSupervisor(pod)
        for container in pod.containers {
            FakeLauncher.run(container)
            supervisor.started(container)
        }
        return (pod, supervisor, termination)
    }

    private func exit(_ container: Container, code: Int32, supervisor: Supervisor) {
        container.markExited(.exited(code: code))
        supervisor.exited(container, termination: container.termination!)
    }

    private func step(_ supervisor: Supervisor) {
        supervisor.runDue(sink: { _, _, _ in })
    }

    /// Delivers the probe results the last ``step`` started.
    private func deliverProbes(_ pod: Pod, _ supervisor: Supervisor, count: Int) async {
        for _ in 0..<count {
            guard case .probeFinished(let name, let kind, let success, let detail)? = await pod.events.next(until: nil),
                  let container = pod.container(named: name) else { return XCTFail("expected a probe result") }
            supervisor.probeFinished(container, kind: kind, success: success, detail: detail)
        }
    }

    // MARK: restart policy and back-off

    func testAlwaysRestartsAfterADoublingBackOff() throws {
        let (pod, supervisor, _) = try runningPod(.always)
        let container = pod.containers[0]
        var expected: [MonotonicInstant] = []
        for delay in [10.0, 20, 40, 80, 160, 300, 300] {
            clock.advance(bySeconds: 1)
            exit(container, code: 0, supervisor: supervisor)
            let due = clock.now().advanced(bySeconds: delay)
            XCTAssertEqual(supervisor.nextWakeUp, due)
            XCTAssertTrue(supervisor.isRestartPending(container.name))
            clock.advance(to: MonotonicInstant(nanoseconds: due.nanoseconds - 1))
            step(supervisor)
            XCTAssertEqual(launcher.restarts(of: container.name), expected, "not before the back-off ends")
            clock.advance(to: due)
            step(supervisor)
            expected.append(due)
            XCTAssertEqual(launcher.restarts(of: container.name), expected)
            XCTAssertTrue(container.isRunning)
        }
        XCTAssertEqual(container.restartCount, 7)
    }

    func testTenMinutesOfRunningResetsTheBackOff() throws {
        let (pod, supervisor, _) = try runningPod(.always)
        let container = pod.containers[0]
        exit(container, code: 1, supervisor: supervisor)
        clock.advance(bySeconds: 10)
        step(supervisor)
        clock.advance(bySeconds: 1)
        exit(container, code: 1, supervisor: supervisor)
        XCTAssertEqual(supervisor.nextWakeUp, clock.now().advanced(bySeconds: 20))
        clock.advance(bySeconds: 20)
        step(supervisor)
        clock.advance(bySeconds: 600)
        exit(container, code: 1, supervisor: supervisor)
        XCTAssertEqual(supervisor.nextWakeUp, clock.now().advanced(bySeconds: 10), "back to 10 s after 10 minutes of running")
    }

    func testOnFailureRestartsOnlyFailures() throws {
        let (pod, supervisor, _) = try runningPod(.onFailure, containers: 2)
        exit(pod.containers[0], code: 0, supervisor: supervisor)
        exit(pod.containers[1], code: 2, supervisor: supervisor)
        XCTAssertFalse(supervisor.isRestartPending("c0"))
        XCTAssertTrue(supervisor.isRestartPending("c1"))
    }

    func testNeverRestartsNothing() throws {
        let (pod, supervisor, _) = try runningPod(.never)
        let container = pod.containers[0]
        exit(container, code: 137, supervisor: supervisor)
        XCTAssertFalse(supervisor.hasPendingRestarts)
        XCTAssertNil(supervisor.nextWakeUp)
    }

    func testAPodStopCancelsPendingRestartsAndReadiness() throws {
        let (pod, supervisor, _) = try runningPod(.always, containers: 2)
        XCTAssertTrue(supervisor.isPodReady, "no readiness probe: ready while running")
        exit(pod.containers[0], code: 1, supervisor: supervisor)
        XCTAssertFalse(supervisor.isPodReady)
        supervisor.terminating()
        XCTAssertFalse(supervisor.hasPendingRestarts)
        clock.advance(bySeconds: 3600)
        step(supervisor)
        XCTAssertTrue(launcher.restarts(of: "c0").isEmpty)
        XCTAssertFalse(supervisor.isReady("c1"))
    }

    // MARK: probes

    func testLivenessFailuresStopTheContainerWithTheProbesGracePeriod() async throws {
        let liveness = Probe(handler: .exec(command: ["check"]), initialDelaySeconds: 5, periodSeconds: 10,
                             failureThreshold: 3, terminationGracePeriodSeconds: 7)
        let start = clock.now()
        let (pod, supervisor, termination) = try runningPod(.always, probes: [.liveness: liveness])
        let container = pod.containers[0]
        XCTAssertEqual(supervisor.nextWakeUp, start.advanced(bySeconds: 5), "first run after the initial delay")
        launcher.script(.liveness, [false, false, false])
        for run in 0..<3 {
            clock.advance(to: start.advanced(bySeconds: 5 + 10 * Double(run)))
            step(supervisor)
            await deliverProbes(pod, supervisor, count: 1)
            XCTAssertEqual(termination.isTerminating(container.name), run == 2, "stopped at the third failure only")
        }
        XCTAssertEqual(clock.nextDeadline, clock.now().advanced(bySeconds: 7), "SIGKILL due after the probe's grace period")
    }

    func testTheStartupProbeGatesReadiness() async throws {
        let startup = Probe(handler: .exec(command: ["started"]), periodSeconds: 2, failureThreshold: 10)
        let readiness = Probe(handler: .exec(command: ["ready"]), periodSeconds: 5)
        let (pod, supervisor, _) = try runningPod(.always, probes: [.startup: startup, .readiness: readiness])
        let container = pod.containers[0]
        launcher.script(.startup, [false, true])
        step(supervisor)
        await deliverProbes(pod, supervisor, count: 1) // startup fails once
        XCTAssertFalse(supervisor.isReady("c0"))
        XCTAssertEqual(supervisor.nextWakeUp, clock.now().advanced(bySeconds: 2), "only the startup probe is scheduled")
        clock.advance(bySeconds: 2)
        step(supervisor)
        await deliverProbes(pod, supervisor, count: 1) // startup succeeds
        XCTAssertFalse(supervisor.isReady("c0"), "not ready before its readiness probe passed")
        step(supervisor)
        await deliverProbes(pod, supervisor, count: 1) // readiness runs at once and passes
        XCTAssertTrue(supervisor.isReady("c0"))
        XCTAssertTrue(supervisor.isPodReady)
        launcher.script(.readiness, [false, false, false])
        for run in 1...3 {
            clock.advance(bySeconds: 5)
            step(supervisor)
            await deliverProbes(pod, supervisor, count: 1)
            XCTAssertEqual(supervisor.isReady("c0"), run < 3, "out of readiness at the failure threshold (3)")
        }
        XCTAssertTrue(container.isRunning, "but does not stop it")
    }
}
