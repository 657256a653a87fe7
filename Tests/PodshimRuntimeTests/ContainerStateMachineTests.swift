import XCTest
@testable import PodshimRuntime
@testable import PodshimSystem
import Glibc

/// ContainerStateMachine: created → running → exited, or created → exited on a failed start.
final class ContainerStateMachineTests: XCTestCase {
    private func transitionError(file: StaticString = #filePath, line: UInt = #line,
                                 _ body: () throws -> Void) -> ContainerStateMachine.TransitionError? {
        assertThrows(ContainerStateMachine.TransitionError.self, file: file, line: line, body)
    }

    private func running(pid: Int32 = 42) throws -> ContainerStateMachine {
        var machine = ContainerStateMachine()
        try machine.started(pid: pid)
        return machine
    }

    func testInitialState() {
        let machine = ContainerStateMachine()
        XCTAssertEqual(machine.state, .created)
        XCTAssertEqual(machine.state.name, "created")
        XCTAssertNil(machine.termination)
        XCTAssertFalse(machine.isRunning)
    }

    func testStart() throws {
        let machine = try running(pid: 1234)
        XCTAssertEqual(machine.state, .running(pid: 1234))
        XCTAssertEqual(machine.state.name, "running")
        XCTAssertTrue(machine.isRunning)
        XCTAssertNil(machine.termination)
    }

    func testExitZeroIsCompleted() throws {
        var machine = try running()
        try machine.exited(.exited(code: 0))
        let expected = ContainerTermination(exitCode: 0, signal: nil, reason: "Completed", message: nil)
        XCTAssertEqual(machine.state, .exited(expected))
        XCTAssertEqual(machine.state.name, "exited")
        XCTAssertEqual(machine.termination, expected)
        XCTAssertFalse(machine.isRunning)
    }

    func testNonZeroExitIsError() throws {
        var machine = try running()
        try machine.exited(.exited(code: 3))
        XCTAssertEqual(machine.termination, ContainerTermination(exitCode: 3, reason: "Error"))
        XCTAssertNil(machine.termination?.signal)
        XCTAssertNil(machine.termination?.message)
    }

    func testKilledBySignal() throws {
        var machine = try running()
        try machine.exited(.signaled(.kill, coreDumped: false))
        XCTAssertEqual(machine.termination, ContainerTermination(exitCode: 137, signal: .kill, reason: "Error"))
        XCTAssertEqual(machine.termination?.exitCode, 137)
        XCTAssertEqual(machine.termination?.signal, Signal(rawValue: 9))
    }

    func testTerminatedWithCoreDump() throws {
        var machine = try running()
        try machine.exited(.signaled(Signal(rawValue: SIGSEGV), coreDumped: true))
        XCTAssertEqual(machine.termination,
                       ContainerTermination(exitCode: 139, signal: Signal(rawValue: SIGSEGV), reason: "Error"))
    }

    func testFailedToStartThenExitIsContainerCannotRun() throws {
        var machine = ContainerStateMachine()
        try machine.failedToStart("execve nope: ENOENT")
        XCTAssertEqual(machine.state, .created, "the exit status is still to come")
        try machine.exited(.exited(code: 127))
        XCTAssertEqual(machine.termination, ContainerTermination(
            exitCode: 127, signal: nil, reason: "ContainerCannotRun", message: "execve nope: ENOENT"))
        XCTAssertFalse(machine.isRunning)
    }

    func testExitBeforeStartWithoutReport() throws {
        var machine = ContainerStateMachine()
        try machine.exited(.signaled(.kill, coreDumped: false))
        XCTAssertEqual(machine.termination, ContainerTermination(
            exitCode: 137, signal: nil, reason: "ContainerCannotRun", message: "exited before it started"))
    }

    func testStartingTwiceThrows() throws {
        var machine = try running(pid: 7)
        let error = transitionError { try machine.started(pid: 8) }
        XCTAssertEqual(error?.description, "cannot start a container that is running")
        XCTAssertEqual(error?.action, "start")
        XCTAssertEqual(error?.state, .running(pid: 7))
        XCTAssertEqual(machine.state, .running(pid: 7), "a rejected transition changes nothing")
    }

    func testExitingTwiceThrows() throws {
        var machine = try running()
        try machine.exited(.exited(code: 0))
        let error = transitionError { try machine.exited(.exited(code: 1)) }
        XCTAssertEqual(error?.description, "cannot exit a container that is exited")
        XCTAssertEqual(machine.termination?.exitCode, 0, "the first exit is kept")
        XCTAssertEqual(machine.termination?.reason, "Completed")
    }

    func testStartingAnExitedContainerThrows() throws {
        var machine = ContainerStateMachine()
        try machine.exited(.exited(code: 1))
        XCTAssertEqual(transitionError { try machine.started(pid: 1) }?.description,
                       "cannot start a container that is exited")
    }

    func testFailingToStartARunningContainerThrows() throws {
        var machine = try running()
        XCTAssertEqual(transitionError { try machine.failedToStart("late") }?.description,
                       "cannot fail to start a container that is running")
    }

    func testFailingToStartAnExitedContainerThrows() throws {
        var machine = try running()
        try machine.exited(.exited(code: 2))
        XCTAssertEqual(transitionError { try machine.failedToStart("late") }?.description,
                       "cannot fail to start a container that is exited")
    }

    func testTerminationDefaults() {
        let termination = ContainerTermination(exitCode: 1, reason: "Error")
        XCTAssertNil(termination.signal)
        XCTAssertNil(termination.message)
    }
}
