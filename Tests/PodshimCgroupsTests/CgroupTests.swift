import Foundation
import Glibc
import PodshimSystem
import XCTest
@testable import PodshimCgroups

final class CgroupTests: XCTestCase {
    private var scratch: ScratchDirectory!
    private var cgroup: Cgroup { Cgroup(path: scratch.path) }

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch?.remove(); scratch = nil }

    private func contents(_ relative: String) -> String? {
        try? String(contentsOfFile: scratch.path + "/" + relative, encoding: .utf8)
    }

    func testChildAndExists() {
        XCTAssertEqual(Cgroup(path: "/a/b").child("c"), Cgroup(path: "/a/b/c"))
        XCTAssertTrue(cgroup.exists)
        XCTAssertFalse(cgroup.child("nope").exists)
    }

    func testKeyedValues() throws {
        try scratch.makeFile("stat", "usage_usec 12345\nnr_throttled 3\nbad line here\nword x\n\nnegative -3\nlone\nspaced  7\n")
        // Runs of spaces separate like one; lines without exactly two fields or with a non-number are skipped.
        XCTAssertEqual(cgroup.keyedValues("stat"), ["usage_usec": 12345, "nr_throttled": 3, "negative": -3, "spaced": 7])
        XCTAssertEqual(cgroup.keyedValues("missing"), [:])
        try scratch.makeFile("empty", "")
        XCTAssertEqual(cgroup.keyedValues("empty"), [:])
    }

    func testKeyedValuesReadsLargeFiles() throws {
        // Longer than one 4096-byte read.
        let lines = (0..<600).map { "key\($0) \($0)" }
        try scratch.makeFile("big", lines.joined(separator: "\n") + "\n")
        let values = cgroup.keyedValues("big")
        XCTAssertEqual(values.count, 600)
        XCTAssertEqual(values["key0"], 0)
        XCTAssertEqual(values["key599"], 599)
    }

    func testNumber() throws {
        try scratch.makeFile("memory.current", "1048576\n")
        try scratch.makeFile("memory.max", "max\n")
        try scratch.makeFile("padded", "  42 \n")
        try scratch.makeFile("empty", "")
        XCTAssertEqual(cgroup.number("memory.current"), 1_048_576)
        XCTAssertNil(cgroup.number("memory.max"))
        XCTAssertEqual(cgroup.number("padded"), 42)
        XCTAssertNil(cgroup.number("empty"))
        XCTAssertNil(cgroup.number("missing"))
    }

    func testIsPopulated() throws {
        XCTAssertFalse(cgroup.isPopulated, "no cgroup.events")
        try scratch.makeFile("cgroup.events", "populated 0\nfrozen 0\n")
        XCTAssertFalse(cgroup.isPopulated)
        try scratch.makeFile("cgroup.events", "populated 1\nfrozen 0\n")
        XCTAssertTrue(cgroup.isPopulated)
    }

    func testWriteTruncatesAndReadReturnsContent() throws {
        try scratch.makeFile("cpu.max", "a much longer previous value\n")
        try cgroup.write("cpu.max", "25000 100000")
        XCTAssertEqual(contents("cpu.max"), "25000 100000")
        XCTAssertEqual(try cgroup.read("cpu.max"), "25000 100000")
    }

    func testWriteDoesNotCreateFiles() {
        do {
            try cgroup.write("cpu.max", "max 100000")
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.description, "open cpu.max \(scratch.path): ENOENT")
        }
        XCTAssertNil(contents("cpu.max"))
    }

    func testReadErrorNamesFileAndPath() {
        do {
            _ = try cgroup.read("memory.peak")
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error, SystemError("open memory.peak", path: scratch.path, errno: .noSuchFileOrDirectory))
            XCTAssertEqual(error.description, "open memory.peak \(scratch.path): ENOENT")
        }
    }

    func testAddWritesPidIntoCgroupProcs() throws {
        try scratch.makeFile("cgroup.procs")
        try cgroup.add(pid: 4242)
        XCTAssertEqual(contents("cgroup.procs"), "4242")
    }

    func testKillAllWritesOneIntoCgroupKill() throws {
        try scratch.makeFile("cgroup.kill")
        XCTAssertTrue(try cgroup.killAll())
        XCTAssertEqual(contents("cgroup.kill"), "1")
    }

    func testKillAllWithoutCgroupKillReturnsFalse() throws {
        XCTAssertFalse(try cgroup.killAll())
        XCTAssertNil(contents("cgroup.kill"), "must not be created")
    }

    func testAvailableControllers() throws {
        XCTAssertEqual(cgroup.availableControllers(), [])
        try scratch.makeFile("cgroup.controllers", "cpuset cpu io memory pids\n")
        XCTAssertEqual(cgroup.availableControllers(), ["cpuset", "cpu", "io", "memory", "pids"])
    }

    func testEnableControllersWritesOnlyAvailableOnes() throws {
        try scratch.makeFile("cgroup.controllers", "cpu io\n")
        try scratch.makeFile("cgroup.subtree_control", "")
        XCTAssertEqual(try cgroup.enableControllers(["cpu", "memory", "pids"]), ["cpu"])
        XCTAssertEqual(contents("cgroup.subtree_control"), "+cpu")
    }

    func testEnableControllersSkipsAlreadyEnabledOnes() throws {
        try scratch.makeFile("cgroup.controllers", "cpu io memory pids\n")
        try scratch.makeFile("cgroup.subtree_control", "cpu memory\n")
        XCTAssertEqual(try cgroup.enableControllers(["cpu", "memory", "pids"]), ["cpu", "memory", "pids"])
        XCTAssertEqual(contents("cgroup.subtree_control"), "+pids", "only the missing controller is written")
    }

    func testEnableControllersWritesNothingWhenAllEnabled() throws {
        try scratch.makeFile("cgroup.controllers", "cpu memory pids\n")
        try scratch.makeFile("cgroup.subtree_control", "cpu memory pids\n")
        XCTAssertEqual(try cgroup.enableControllers(["cpu", "memory", "pids"]), ["cpu", "memory", "pids"])
        XCTAssertEqual(contents("cgroup.subtree_control"), "cpu memory pids\n")
    }

    func testEnableControllersWithNothingAvailable() throws {
        XCTAssertEqual(try cgroup.enableControllers(["cpu", "memory", "pids"]), [])
        XCTAssertNil(contents("cgroup.subtree_control"))
    }

    func testEnableControllersErrorNamesFile() throws {
        // Available but no subtree_control file to write.
        try scratch.makeFile("cgroup.controllers", "cpu\n")
        do {
            try cgroup.enableControllers(["cpu"])
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.description, "open cgroup.subtree_control \(scratch.path): ENOENT")
        }
    }

    func testCreateMakesMissingParentsAndAcceptsExisting() throws {
        let deep = cgroup.child("a").child("b").child("c")
        XCTAssertNoThrow(try deep.create())
        XCTAssertTrue(deep.exists)
        XCTAssertNoThrow(try deep.create(), "existing is fine")
    }

    func testCreateFailureNamesPath() throws {
        try scratch.makeFile("file")
        let below = cgroup.child("file").child("x")
        do {
            try below.create()
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.description, "mkdir \(below.path): ENOTDIR")
        }
    }

    func testOpenDirectory() throws {
        let fd = try cgroup.openDirectory()
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC)
        close(fd)
        do {
            _ = try cgroup.child("gone").openDirectory()
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.description, "open \(scratch.path)/gone: ENOENT")
        }
    }

    func testRemoveDeletesTreeOfEmptyDirectories() throws {
        // rmdir only removes empty directories; a fake tree of directories only (a real cgroupfs
        // removes cgroup directories with their interface files).
        for dir in ["pod/pause", "pod/container-a/x/y", "pod/container-b"] {
            try scratch.makeDirectory(dir)
        }
        let pod = cgroup.child("pod")
        XCTAssertNoThrow(try pod.remove(timeoutSeconds: 0.1))
        XCTAssertFalse(pod.exists)
        XCTAssertTrue(cgroup.exists)
    }

    func testRemoveMissingIsFine() {
        XCTAssertNoThrow(try cgroup.child("missing").remove(timeoutSeconds: 0.1))
    }

    func testRemoveFailureNamesPath() throws {
        // A regular file inside makes rmdir fail with ENOTEMPTY, reported at once (not retried as EBUSY).
        try scratch.makeDirectory("pod/leaf")
        try scratch.makeFile("pod/leaf/data")
        let pod = cgroup.child("pod")
        do {
            try pod.remove(timeoutSeconds: 5)
            XCTFail("expected an error")
        } catch {
            XCTAssertEqual(error.description, "rmdir \(pod.path)/leaf: ENOTEMPTY")
        }
    }
}
