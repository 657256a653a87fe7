import Foundation
import Glibc
import XCTest
@testable import PodshimRuntime
import PodshimSystem
import Synchronization

/// The attach side of a container's stdio without a container: the output's fan-out to attach
/// sessions (raw bytes, from the subscription on, EOF at the end, a slow session dropped, the log
/// untouched), the terminal mode, and the input's copies and `stdinOnce` closing.
final class ContainerStdioTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "podshim-stdio-\(getpid())-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory) // a temp dir; nothing to report
    }

    private func write(_ fd: Int32, _ text: String) {
        XCTAssertEqual(Self.write(fd, text), text.utf8.count)
    }

    private static func write(_ fd: Int32, _ text: String) -> Int {
        let bytes = Array(text.utf8)
        return bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    }

    /// Everything `fd` gives until EOF (or `limit` bytes), waiting up to 10 s.
    private func readAll(_ fd: Int32, limit: Int = .max) -> [UInt8] {
        var out: [UInt8] = []
        var poll = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        while out.count < limit, Glibc.poll(&poll, 1, 10_000) > 0 {
            var buffer = [UInt8](repeating: 0, count: 4096)
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            out += buffer[..<count]
        }
        return out
    }

    private func waitUntil(_ condition: () -> Bool) {
        for _ in 0..<500 where !condition() { usleep(10_000) }
    }

    func testSessionsGetRawOutputFromTheirStartOnAndEOFAtTheEnd() throws {
        let log = directory + "/0.log"
        let output = try ContainerOutput(container: "c", logPath: log, sink: nil)
        let out = output.childStdout, err = output.childStderr
        write(out, "before\n")
        waitUntil { ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("before") }
        let first = try output.subscribe(.stdout)
        let second = try output.subscribe(.stdout)
        let errors = try output.subscribe(.stderr)
        defer { close(first); close(second); close(errors) }
        let ended = Mutex(false)
        output.whenEnded { ended.withLock { $0 = true } }
        write(out, "partial line")
        write(err, "oops\n")
        output.closeChildEnds()
        XCTAssertEqual(String(decoding: readAll(first), as: UTF8.self), "partial line")
        XCTAssertEqual(String(decoding: readAll(second), as: UTF8.self), "partial line")
        XCTAssertEqual(String(decoding: readAll(errors), as: UTF8.self), "oops\n")
        waitUntil { ended.withLock { $0 } }
        XCTAssertTrue(ended.withLock { $0 })
        // After the end: a new session is at EOF at once, and a waiter is called at once.
        let late = try output.subscribe(.stdout)
        defer { close(late) }
        XCTAssertEqual(readAll(late), [])
        let now = Mutex(false)
        output.whenEnded { now.withLock { $0 = true } }
        XCTAssertTrue(now.withLock { $0 })
        XCTAssertTrue(output.waitDrained(timeoutSeconds: 10))
        let text = try String(contentsOfFile: log, encoding: .utf8)
        XCTAssertTrue(text.contains("stdout F before"), text)
        XCTAssertTrue(text.contains("stdout F partial line"), text)
        XCTAssertTrue(text.contains("stderr F oops"), text)
    }

    func testASessionThatDoesNotKeepUpIsDroppedAndTheLogIsComplete() throws {
        let log = directory + "/0.log"
        let output = try ContainerOutput(container: "c", logPath: log, sink: nil)
        let slow = try output.subscribe(.stdout)
        defer { close(slow) }
        // 4 MiB of output while the session reads nothing: more than its pipe holds.
        let line = String(repeating: "x", count: 1023) + "\n"
        let writer = Thread {
            for _ in 0..<4096 { _ = Self.write(output.childStdout, line) } // a blocking pipe: whole writes
            output.closeChildEnds()
        }
        writer.start()
        XCTAssertTrue(output.waitDrained(timeoutSeconds: 60))
        let got = readAll(slow)
        XCTAssertLessThan(got.count, 4 << 20, "the session was cut off, not the container")
        let expected = Array(line.utf8)
        XCTAssertTrue(got.enumerated().allSatisfy { $0.element == expected[$0.offset % 1024] }, "it got a prefix of the output")
        let logged = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").count
        XCTAssertEqual(logged, 4096, "every line reached the log")
    }

    func testATerminalIsOneStreamAndItsInputWritesToIt() throws {
        let log = directory + "/0.log"
        let output = try ContainerOutput(container: "t", logPath: log, sink: nil, terminal: true)
        let master = try XCTUnwrap(output.terminal)
        XCTAssertEqual(output.childStdout, output.childStderr)
        XCTAssertEqual(output.pipeReadEnds, [], "the keeper holds a terminal through the input")
        XCTAssertEqual(isatty(output.childStdout), 1)
        let session = try output.subscribe(.stdout)
        let stderrSession = try output.subscribe(.stderr)
        defer { close(session); close(stderrSession) }
        XCTAssertEqual(readAll(stderrSession), [], "a terminal has no stderr of its own")

        let input = ContainerInput(owning: fcntl(master, F_DUPFD_CLOEXEC, 3), terminal: true, once: true)
        XCTAssertFalse(input.closesAfterFirstSession, "stdinOnce never hangs up a terminal")
        let writer = try XCTUnwrap(try input.sessionDescriptor())
        write(writer, "typed\n") // the line discipline echoes it to the output side
        close(writer)
        var slave = [UInt8](repeating: 0, count: 64)
        let count = slave.withUnsafeMutableBytes { read(output.childStdout, $0.baseAddress, $0.count) }
        XCTAssertEqual(String(decoding: slave[..<max(count, 0)], as: UTF8.self), "typed\n")
        output.closeChildEnds()
        let echoed = String(decoding: readAll(session), as: UTF8.self)
        XCTAssertEqual(echoed, "typed\r\n")
        XCTAssertTrue(output.waitDrained(timeoutSeconds: 10))
        XCTAssertTrue(try String(contentsOfFile: log, encoding: .utf8).contains("stdout F typed"))
    }

    func testStdinOnceClosesForGoodAndSessionsHoldTheirOwnCopies() throws {
        let pipe = try Kernel.pipe()
        defer { close(pipe.read) }
        let input = ContainerInput(owning: pipe.write, terminal: false, once: true)
        XCTAssertTrue(input.closesAfterFirstSession)
        let session = try XCTUnwrap(try input.sessionDescriptor())
        write(session, "a")
        close(session)
        XCTAssertTrue(input.isOpen, "a session's copy closing leaves the stdin open")
        XCTAssertTrue(input.closeForGood())
        XCTAssertFalse(input.closeForGood())
        XCTAssertFalse(input.isOpen)
        XCTAssertNil(try input.sessionDescriptor())
        XCTAssertEqual(readAll(pipe.read), Array("a".utf8), "then the container reads EOF")
    }
}
