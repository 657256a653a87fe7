import Foundation
import Glibc
import PodshimSystem
import XCTest
@testable import PodshimCgroups

final class CgroupUsageTests: XCTestCase {
    private var scratch: ScratchDirectory!

    override func setUpWithError() throws { scratch = try ScratchDirectory() }
    override func tearDown() { scratch?.remove(); scratch = nil }

    func testReadsEveryUsageFile() throws {
        try scratch.makeFile("cpu.stat", "usage_usec 12345\nuser_usec 1\nsystem_usec 2\nnr_periods 10\nnr_throttled 3\nthrottled_usec 5\n")
        try scratch.makeFile("memory.current", "1048576\n")
        try scratch.makeFile("memory.peak", "2097152\n")
        try scratch.makeFile("memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n")
        let usage = CgroupUsage.read(Cgroup(path: scratch.path))
        XCTAssertEqual(usage, CgroupUsage(cpuMicroseconds: 12345, memoryCurrentBytes: 1_048_576, memoryPeakBytes: 2_097_152,
                                          oomKills: 1, throttledPeriods: 3))
        XCTAssertEqual(usage.summary, "cpu 12.3 ms, memory peak 2.0 MiB")
    }

    func testOomKillsCountsOomKillNotOom() throws {
        try scratch.makeFile("memory.events", "low 0\nhigh 0\nmax 9\noom 5\noom_kill 2\noom_group_kill 1\n")
        XCTAssertEqual(CgroupUsage.read(Cgroup(path: scratch.path)).oomKills, 2)
    }

    func testMissingFilesLeaveFieldsNil() {
        let usage = CgroupUsage.read(Cgroup(path: scratch.path))
        XCTAssertEqual(usage, CgroupUsage(cpuMicroseconds: nil, memoryCurrentBytes: nil, memoryPeakBytes: nil,
                                          oomKills: 0, throttledPeriods: nil))
        XCTAssertEqual(usage.summary, "")
        XCTAssertEqual(CgroupUsage.read(Cgroup(path: scratch.path + "/gone")), CgroupUsage())
    }

    func testSomeFilesMissing() throws {
        // A kernel without memory.peak (< 5.19): the summary falls back to memory.current.
        try scratch.makeFile("memory.current", "1572864\n")
        try scratch.makeFile("memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n")
        let usage = CgroupUsage.read(Cgroup(path: scratch.path))
        XCTAssertEqual(usage, CgroupUsage(memoryCurrentBytes: 1_572_864, oomKills: 0))
        XCTAssertEqual(usage.summary, "memory 1.5 MiB")
    }

    func testSummaryFormats() {
        XCTAssertEqual(CgroupUsage(cpuMicroseconds: 12345, memoryPeakBytes: 2_097_152).summary, "cpu 12.3 ms, memory peak 2.0 MiB")
        XCTAssertEqual(CgroupUsage(cpuMicroseconds: 0).summary, "cpu 0.0 ms")
        XCTAssertEqual(CgroupUsage(cpuMicroseconds: 1_999_960).summary, "cpu 2000.0 ms")
        XCTAssertEqual(CgroupUsage(cpuMicroseconds: 12_360).summary, "cpu 12.4 ms")
        XCTAssertEqual(CgroupUsage(memoryCurrentBytes: 1_048_576).summary, "memory 1.0 MiB")
        // Peak wins over current.
        XCTAssertEqual(CgroupUsage(memoryCurrentBytes: 1_048_576, memoryPeakBytes: 3_670_016).summary, "memory peak 3.5 MiB")
        XCTAssertEqual(CgroupUsage(cpuMicroseconds: 500, memoryCurrentBytes: 524_288).summary, "cpu 0.5 ms, memory 0.5 MiB")
        // oomKills and throttling are not part of the summary.
        XCTAssertEqual(CgroupUsage(oomKills: 3, throttledPeriods: 7).summary, "")
    }
}
