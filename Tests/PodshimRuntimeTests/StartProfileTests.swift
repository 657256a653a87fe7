import XCTest
import Glibc
import Synchronization
@testable import PodshimProcess
import PodshimSystem

/// The start-path profile: stages from marks, the spawn's own marks, and a real spawn (no root:
/// no namespaces, no rootfs) whose child fills them in through the memory it shares with us.
final class StartProfileTests: XCTestCase {
    private func instant(_ ns: UInt64) -> MonotonicInstant { MonotonicInstant(nanoseconds: ns) }

    func testStagesAreTheGapsBetweenMarks() {
        var profile = StartProfile(startingAt: instant(1_000))
        profile.mark("a", at: instant(1_500))
        profile.mark("b", at: instant(4_000))
        profile.mark("backwards", at: instant(3_000)) // a clock read earlier than the last mark: 0, never negative
        XCTAssertEqual(profile.stages, [.init(name: "a", nanoseconds: 500), .init(name: "b", nanoseconds: 2_500),
                                        .init(name: "backwards", nanoseconds: 0)])
        XCTAssertEqual(profile.totalNanoseconds, 3_000)
        XCTAssertEqual(profile.start, instant(1_000))
        XCTAssertEqual(profile.json, #"{"stages":[{"stage":"a","ns":500},{"stage":"b","ns":2500},{"stage":"backwards","ns":0}]}"#)
    }

    func testAppendingAnotherProfileNamesTheGapBeforeIt() {
        var outer = StartProfile(startingAt: instant(0))
        outer.mark("daemon", at: instant(100))
        var inner = StartProfile(startingAt: instant(160))
        inner.mark("pod", at: instant(200))
        outer.append(inner, gap: "launch")
        outer.mark("after", at: instant(250))
        XCTAssertEqual(outer.stages.map(\.name), ["daemon", "launch", "pod", "after"])
        XCTAssertEqual(outer.stages.map(\.nanoseconds), [100, 60, 40, 50])
        var empty = StartProfile(startingAt: instant(300))
        empty.append(StartProfile(startingAt: instant(400)), gap: "nothing")
        XCTAssertTrue(empty.stages.isEmpty)
    }

    func testSpawnMarksBecomeStagesAndMissingMarksFoldIntoTheNext() {
        var profile = StartProfile(startingAt: instant(0))
        // clone, child, namespaces, mount-prepare, rootfs, mounts, pivot-root, credentials, stdio, seccomp, execve
        profile.appendSpawnMarks([10, 20, 30, 0, 0, 0, 0, 70, 80, 90, 100])
        XCTAssertEqual(profile.stages.map(\.name), ["spawn.prepare", "spawn.clone", "child.namespaces", "child.credentials",
                                                    "child.stdio", "child.seccomp", "spawn.execve"])
        XCTAssertEqual(profile.stages.map(\.nanoseconds), [10, 10, 10, 40, 10, 10, 10])

        var fallback = StartProfile(startingAt: instant(0))
        fallback.appendSpawnMarks([10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 100]) // a child with its own memory marks nothing we see
        XCTAssertEqual(fallback.stages.map(\.name), ["spawn.prepare", "spawn.child"])
        XCTAssertEqual(fallback.totalNanoseconds, 100)

        var none = StartProfile(startingAt: instant(0))
        none.appendSpawnMarks([0, 0, 0]) // wrong length or no clone: nothing
        none.appendSpawnMarks([Int64](repeating: 0, count: 11))
        XCTAssertTrue(none.stages.isEmpty)
    }

    func testARealSpawnReportsItsChildsStagesInOrder() throws {
        let exited = DispatchSemaphore(value: 0)
        let recorder = StartProfileRecorder()
        let process = try Spawner.spawn(ProcessPlan(argv: ["/bin/true"]), sandbox: nil, stdio: .init(), profile: recorder,
                                        onExit: { _ in exited.signal() })
        _ = process
        XCTAssertEqual(exited.wait(timeout: .now() + 30), .success)
        let names = recorder.profile.stages.map(\.name)
        // No rootfs: the mount stages are folded away; the child's own marks are there (CLONE_VM).
        XCTAssertEqual(names.first, "spawn.prepare")
        XCTAssertTrue(names.contains("child.namespaces"), "\(names)")
        XCTAssertFalse(names.contains("child.rootfs"), "\(names)")
        XCTAssertEqual(Array(names.suffix(3)), ["spawn.execve", "spawn.cloned", "spawn.finish"])
        XCTAssertGreaterThan(recorder.profile.totalNanoseconds, 0)
    }
}
