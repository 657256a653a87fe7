import Foundation
import Logging
import PodshimCRI
import PodshimRuntime
import PodshimSystem
import PodshimTesting
import XCTest
@testable import PodshimDaemon

/// The CRI sandbox and container logic through a fake launcher: what a kubelet's retries and
/// repeated calls see (idempotent stop and remove, AlreadyExists, FailedPrecondition), exits
/// recorded from the pod's events, a failed start leaving nothing behind. No root, no process.
final class SandboxManagerTests: XCTestCase {
    private var directory: String!
    private var launcher: FakeLauncher!
    private var manager: SandboxManager!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("podshim-sm-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory + "/images/busybox/rootfs/etc", withIntermediateDirectories: true)
        let configuration = RuntimeConfiguration(
            stateDirectory: directory + "/state", rootDirectory: directory + "/root", imageDirectory: directory + "/images",
            logDirectory: directory + "/logs", pauseBinary: "/nonexistent/podshim-pause")
        launcher = FakeLauncher(clock: ManualClock())
        manager = SandboxManager(configuration: configuration, hierarchy: nil, logger: Logger(label: "test"), launcher: launcher)
        try manager.store.prepare() // as the daemon does at start
    }

    override func tearDown() async throws {
        for sandbox in manager.allSandboxes { try await manager.removePodSandbox(sandbox) }
        let left = Mounts.mountPoints(under: directory)
        try? FileManager.default.removeItem(atPath: directory) // a temp dir of this test
        XCTAssertEqual(left, [], "the fake world mounts nothing")
    }

    private func sandboxConfig(_ name: String = "web", attempt: UInt32 = 0) -> Runtime_V1_PodSandboxConfig {
        var config = Runtime_V1_PodSandboxConfig()
        config.metadata.name = name
        config.metadata.namespace = "default"
        config.metadata.uid = "uid-" + name
        config.metadata.attempt = attempt
        return config
    }

    private func containerConfig(_ name: String = "app", attempt: UInt32 = 0) -> Runtime_V1_ContainerConfig {
        var config = Runtime_V1_ContainerConfig()
        config.metadata.name = name
        config.metadata.attempt = attempt
        config.image.image = "busybox"
        config.command = ["sleep", "3600"]
        return config
    }

    /// The code of the PodshimError `body` throws (nil when it throws nothing or something else).
    private func code(_ body: () throws -> Void) -> PodshimError.Code? {
        do { try body() } catch { return (error as? PodshimError)?.code }
        return nil
    }

    private func records(_ kind: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory + "/state/cri/" + kind)) ?? []).filter { $0.hasSuffix(".json") }
    }

    func testStopAndRemoveOfASandboxAreIdempotent() async throws {
        let id = try manager.runPodSandbox(sandboxConfig())
        let sandbox = try manager.sandbox(id)
        XCTAssertTrue(sandbox.lock.withLock { sandbox.record.ready })
        XCTAssertEqual(records("sandboxes").count, 1)
        await manager.stopPodSandbox(sandbox)
        XCTAssertFalse(sandbox.lock.withLock { sandbox.record.ready })
        XCTAssertTrue(sandbox.pauseExited.hasFired, "the pause's exit came back through the pod's events")
        await manager.stopPodSandbox(sandbox) // again: nothing to do, no error
        try await manager.removePodSandbox(sandbox)
        try await manager.removePodSandbox(sandbox) // again: already gone, no error
        XCTAssertEqual(code { _ = try manager.sandbox(id) }, .notFound)
        XCTAssertEqual(launcher.starts, ["sandbox"], "one pause, however many stops and removes")
        XCTAssertTrue(records("sandboxes").isEmpty)
    }

    func testTheSameSandboxTwiceIsAlreadyExistsAndANewAttemptIsNot() throws {
        let first = try manager.runPodSandbox(sandboxConfig())
        XCTAssertEqual(code { _ = try manager.runPodSandbox(sandboxConfig()) }, .alreadyExists)
        let second = try manager.runPodSandbox(sandboxConfig(attempt: 1))
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(manager.allSandboxes.count, 2)
    }

    func testAFailedPauseStartLeavesNoSandboxNoRecordNoDirectory() throws {
        launcher.failStarts(of: "sandbox")
        XCTAssertEqual(code { _ = try manager.runPodSandbox(sandboxConfig()) }, .internal)
        XCTAssertTrue(manager.allSandboxes.isEmpty)
        XCTAssertTrue(records("sandboxes").isEmpty)
        let podDirectories = (try? FileManager.default.contentsOfDirectory(atPath: directory + "/root/pods")) ?? []
        XCTAssertTrue(podDirectories.isEmpty, "left behind: \(podDirectories)")
        // And the name is free again.
        XCTAssertNoThrow(try manager.runPodSandbox(sandboxConfig()))
    }

    func testContainerCreateAndStartRulesAndAnExitRecorded() async throws {
        let sandbox = try manager.sandbox(try manager.runPodSandbox(sandboxConfig()))
        let id = try manager.createContainer(in: sandbox, config: containerConfig())
        XCTAssertEqual(code { _ = try manager.createContainer(in: sandbox, config: containerConfig()) }, .alreadyExists)
        let (_, container) = try manager.container(id)
        XCTAssertEqual(sandbox.lock.withLock { container.record.state }, .created)
        try manager.startContainer(container, in: sandbox)
        XCTAssertEqual(sandbox.lock.withLock { container.record.state }, .running)
        XCTAssertEqual(code { try manager.startContainer(container, in: sandbox) }, .failedPrecondition, "a container starts once")
        XCTAssertEqual(launcher.starts, ["sandbox", id])

        sandbox.pod.events.post(.containerExited(name: container.runtime.name, status: .exited(code: 3)))
        let exited = await container.exited.wait(seconds: 30)
        XCTAssertTrue(exited)
        XCTAssertEqual(sandbox.lock.withLock { container.record.state }, .exited)
        XCTAssertEqual(sandbox.lock.withLock { container.record.exitCode }, 3)

        await manager.stop(container, in: sandbox, timeoutSeconds: 30) // exited: nothing to stop
        try await manager.removeContainer(container, in: sandbox)
        try await manager.removeContainer(container, in: sandbox) // again: no error
        XCTAssertEqual(code { _ = try manager.container(id) }, .notFound)
        XCTAssertTrue(records("containers").isEmpty)
    }

    func testNoContainerInAStoppedSandbox() async throws {
        let sandbox = try manager.sandbox(try manager.runPodSandbox(sandboxConfig()))
        await manager.stopPodSandbox(sandbox)
        XCTAssertEqual(code { _ = try manager.createContainer(in: sandbox, config: containerConfig()) }, .failedPrecondition)
    }

    func testAContainerCreatedButNeverStartedIsRemovedWithItsSandbox() async throws {
        let sandbox = try manager.sandbox(try manager.runPodSandbox(sandboxConfig()))
        let id = try manager.createContainer(in: sandbox, config: containerConfig())
        try await manager.removePodSandbox(sandbox)
        XCTAssertEqual(code { _ = try manager.container(id) }, .notFound)
        XCTAssertTrue(records("containers").isEmpty)
        XCTAssertEqual(launcher.starts, ["sandbox"])
    }

    /// The subject of the PodshimError `body` throws.
    private func subject(_ body: () throws -> Void) -> String? {
        do { try body() } catch { return (error as? PodshimError)?.subject }
        return nil
    }

    func testPlanningErrorsNameTheCRIFieldsTheKubeletSent() throws {
        let sandbox = try manager.sandbox(try manager.runPodSandbox(sandboxConfig()))
        var capability = containerConfig("caps")
        capability.linux.securityContext.capabilities.addCapabilities = ["CAP_CHOWN", "CAP_NOT_A_THING"]
        XCTAssertEqual(subject { _ = try manager.createContainer(in: sandbox, config: capability) },
                       "config.linux.security_context.capabilities.add_capabilities[1]")
        var dropped = containerConfig("drops")
        dropped.linux.securityContext.capabilities.dropCapabilities = ["NOPE"]
        XCTAssertEqual(subject { _ = try manager.createContainer(in: sandbox, config: dropped) },
                       "config.linux.security_context.capabilities.drop_capabilities[0]")
        var profile = containerConfig("profile")
        profile.linux.securityContext.seccomp = Runtime_V1_SecurityProfile.with {
            $0.profileType = .localhost
            $0.localhostRef = "/nonexistent/profile.json"
        }
        XCTAssertEqual(subject { _ = try manager.createContainer(in: sandbox, config: profile) },
                       "config.linux.security_context.seccomp")
        var legacy = containerConfig("legacy")
        legacy.linux.securityContext.seccompProfilePath = "localhost//nonexistent/profile.json"
        XCTAssertEqual(subject { _ = try manager.createContainer(in: sandbox, config: legacy) },
                       "config.linux.security_context.seccomp_profile_path")
        var noCommand = containerConfig("empty")
        noCommand.command = []
        XCTAssertEqual(subject { _ = try manager.createContainer(in: sandbox, config: noCommand) }, "config.command")
    }
}
