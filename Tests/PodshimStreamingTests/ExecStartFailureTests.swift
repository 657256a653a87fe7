import Foundation
import Glibc
import NIOCore
import PodshimSPDY
import PodshimSystem
import XCTest
@testable import PodshimStreaming

/// An exec whose process cannot start, against a streaming server in the test process: the
/// session ends at once, over SPDY and WebSocket — every output stream the client reads ended
/// (client-go's executor reads the status only after stdout and stderr), then the status. A
/// command that cannot run (``ExecCommandNotRunnable``) is reported as its exit code with the
/// reason on stderr, as runc does; any other failure as an InternalError.
final class ExecStartFailureTests: XCTestCase {
    static func failing(_ error: any Error & Sendable, stdin: Bool = false, stderr: Bool = true, tty: Bool = false) -> ExecStreamRequest {
        ExecStreamRequest(stdin: stdin, stdout: true, stderr: stderr, tty: tty) { _ in throw error }
    }

    static let notThere = ExecCommandNotRunnable(exitCode: 127, message: "execve /nonexistent: ENOENT")

    // MARK: SPDY

    func testSPDYACommandThatCannotRunEndsEveryStreamWithItsExitCode() throws {
        let server = try StreamingServer()
        defer { server.close() }
        for stdin in [false, true] {
            let url = try XCTUnwrap(server.url(for: .exec(Self.failing(Self.notThere, stdin: stdin))))
            let client = try TestSPDY(url: url)
            defer { client.close() }
            let kinds = ["error"] + (stdin ? ["stdin"] : []) + ["stdout", "stderr"]
            let ids = try client.open(kinds)
            if stdin { try client.send(.data(streamID: ids["stdin"]!, flags: 0, payload: Array("dropped".utf8))) }
            let result = try client.readUntilEnded([ids["stdout"]!, ids["stderr"]!, ids["error"]!])
            XCTAssertEqual(result[ids["stdout"]!], [])
            XCTAssertEqual(result[ids["stderr"]!].map { String(decoding: $0, as: UTF8.self) }, "exec failed: execve /nonexistent: ENOENT\n")
            let status = try XCTUnwrap(JSONValue.parse(try XCTUnwrap(result[ids["error"]!])))
            XCTAssertEqual(status["status"]?.stringValue, "Failure")
            XCTAssertEqual(status["reason"]?.stringValue, "NonZeroExitCode")
            XCTAssertEqual(status["message"]?.stringValue, "exec failed: execve /nonexistent: ENOENT")
            XCTAssertEqual(status["details"]?["causes"], .array([.object([("reason", .string("ExitCode")), ("message", .string("127"))])]))
            try client.send(.goAway(lastGoodStreamID: 0, status: 0))
        }
        try Self.waitForNoSessions(server)
    }

    func testSPDYATerminalGetsTheReasonAndStdoutAloneOnlyTheStatus() throws {
        let server = try StreamingServer()
        defer { server.close() }
        let notExecutable = ExecCommandNotRunnable(exitCode: 126, message: "execve /etc/passwd: EACCES")
        // A terminal: the reason on it (raw: CR LF), stdout ended.
        var url = try XCTUnwrap(server.url(for: .exec(Self.failing(notExecutable, stdin: true, stderr: false, tty: true))))
        var client = try TestSPDY(url: url)
        var ids = try client.open(["error", "stdin", "stdout", "resize"])
        var result = try client.readUntilEnded([ids["stdout"]!, ids["error"]!])
        XCTAssertEqual(result[ids["stdout"]!], Array("exec failed: execve /etc/passwd: EACCES\r\n".utf8))
        XCTAssertTrue(String(decoding: result[ids["error"]!] ?? [], as: UTF8.self).contains(#""message":"126""#))
        client.close()
        // stdout alone: nothing on it, the status says why.
        url = try XCTUnwrap(server.url(for: .exec(Self.failing(notExecutable, stderr: false))))
        client = try TestSPDY(url: url)
        defer { client.close() }
        ids = try client.open(["error", "stdout"])
        result = try client.readUntilEnded([ids["stdout"]!, ids["error"]!])
        XCTAssertEqual(result[ids["stdout"]!], [])
        let status = String(decoding: result[ids["error"]!] ?? [], as: UTF8.self)
        XCTAssertTrue(status.contains(#""message":"exec failed: execve /etc/passwd: EACCES""#), status)
        XCTAssertTrue(status.contains(#""message":"126""#), status)
    }

    func testSPDYAnyOtherStartFailureIsAnInternalErrorThatEndsTheSession() throws {
        let server = try StreamingServer()
        defer { server.close() }
        let failure = PodshimError(.failedPrecondition, message: "container web is not running")
        let url = try XCTUnwrap(server.url(for: .exec(Self.failing(failure))))
        let client = try TestSPDY(url: url)
        defer { client.close() }
        let ids = try client.open(["error", "stdout", "stderr"])
        let result = try client.readUntilEnded([ids["stdout"]!, ids["stderr"]!, ids["error"]!])
        XCTAssertEqual(result[ids["stdout"]!], [])
        XCTAssertEqual(result[ids["stderr"]!], [])
        let status = try XCTUnwrap(JSONValue.parse(try XCTUnwrap(result[ids["error"]!])))
        XCTAssertEqual(status["status"]?.stringValue, "Failure")
        XCTAssertEqual(status["reason"]?.stringValue, "InternalError")
        XCTAssertEqual(status["code"]?.intValue, 500)
        XCTAssertEqual(status["message"]?.stringValue, "container web is not running")
    }

    // MARK: WebSocket

    func testWebSocketACommandThatCannotRunSaysItsExitCodeThenCloses() throws {
        let server = try StreamingServer()
        defer { server.close() }
        for version in ["v5.channel.k8s.io", "v4.channel.k8s.io"] {
            let url = try XCTUnwrap(server.url(for: .exec(Self.failing(Self.notThere, stdin: true))))
            let client = try TestWebSocket(url: url, query: "", protocols: [version])
            defer { client.close() }
            XCTAssertEqual(client.status, 101)
            var channels: [UInt8: [UInt8]] = [:]
            var close: [UInt8]?
            while close == nil, let message = try client.readMessage() {
                if message.opcode == 8 {
                    close = message.payload
                } else if let channel = message.payload.first {
                    channels[channel, default: []] += message.payload.dropFirst()
                }
            }
            XCTAssertEqual(close, [0x03, 0xE8], version) // 1000, right after the status
            XCTAssertEqual(channels[1], [], version) // the "ready" message only
            XCTAssertEqual(channels[2].map { String(decoding: $0, as: UTF8.self) }, "exec failed: execve /nonexistent: ENOENT\n", version)
            let status = try XCTUnwrap(JSONValue.parse(try XCTUnwrap(channels[3])), version)
            XCTAssertEqual(status["reason"]?.stringValue, "NonZeroExitCode", version)
            XCTAssertEqual(status["details"]?["causes"], .array([.object([("reason", .string("ExitCode")), ("message", .string("127"))])]))
        }
        try Self.waitForNoSessions(server)
    }

    // MARK: Helpers

    /// Every session is over (the connections are closed): nothing was left behind.
    static func waitForNoSessions(_ server: StreamingServer) throws {
        let deadline = Date().addingTimeInterval(10)
        while server.activeSessions > 0 && Date() < deadline { usleep(20_000) }
        XCTAssertEqual(server.activeSessions, 0)
    }
}

/// A blocking SPDY/3.1 client for the tests: the upgrade, then frames through PodshimSPDY's codec.
/// Every read waits at most 10 s (a hang fails the test instead of blocking it).
final class TestSPDY {
    private let fd: Int32
    private var buffer: [UInt8] = []
    private let encoder = SPDYFrameEncoder()
    private let decoder = SPDYFrameDecoder()
    private var nextID: UInt32 = 1

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    init(url: String) throws {
        let components = try XCTUnwrap(URLComponents(string: url))
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(try XCTUnwrap(components.port)).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw SystemError("connect", errno: .last) }
        let request = "POST \(components.path) HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\n"
            + "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"
        try write(Array(request.utf8))
        let crlf2: [UInt8] = [13, 10, 13, 10]
        var end: Int?
        while end == nil {
            end = buffer.indices.first { buffer[$0...].starts(with: crlf2) }
            if end == nil, try !fill() { throw Failure(description: "closed before the upgrade's answer") }
        }
        let head = String(decoding: buffer[..<end!], as: UTF8.self)
        buffer.removeFirst(end! + 4)
        guard head.hasPrefix("HTTP/1.1 101") else { throw Failure(description: "not upgraded: \(head)") }
        decoder.feed(buffer)
        buffer.removeAll()
    }

    func close() {
        Glibc.close(fd)
    }

    func send(_ frame: SPDYFrame) throws {
        try write(encoder.encode(frame))
    }

    /// Opens a stream of each kind, one after the other, each once its SYN_REPLY came (as
    /// client-go does); their ids by kind.
    func open(_ kinds: [String]) throws -> [String: UInt32] {
        var ids: [String: UInt32] = [:]
        for kind in kinds {
            let id = nextID
            nextID += 2
            try send(.synStream(streamID: id, associatedStreamID: 0, priority: 0, flags: 0, headers: ["streamtype": kind]))
            while true {
                guard let frame = try next() else { throw Failure(description: "closed before the SYN_REPLY of \(kind)") }
                if case .synReply(id, _, _) = frame { break }
                throw Failure(description: "\(frame) before the SYN_REPLY of \(kind)")
            }
            ids[kind] = id
        }
        return ids
    }

    /// Reads until each of `streams` has ended (FIN); what came on each.
    func readUntilEnded(_ streams: Set<UInt32>) throws -> [UInt32: [UInt8]] {
        var open = streams
        var received = Dictionary(uniqueKeysWithValues: streams.map { ($0, [UInt8]()) })
        while !open.isEmpty {
            guard let frame = try next() else { throw Failure(description: "closed with streams \(open.sorted()) still open") }
            guard case .data(let id, let flags, let payload) = frame else { continue }
            received[id, default: []] += payload
            if flags & SPDYFrame.flagFin != 0 { open.remove(id) }
        }
        return received
    }

    /// The next frame; nil at EOF.
    private func next() throws -> SPDYFrame? {
        while true {
            if let frame = try decoder.next() { return frame }
            guard try fill() else { return nil }
            decoder.feed(buffer)
            buffer.removeAll()
        }
    }

    /// Reads what is there; false at EOF.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            if count < 0 && errno == ECONNRESET { return false }
            guard count >= 0 else { throw SystemError("recv", errno: .last) }
            buffer += chunk[..<count]
            return count > 0
        }
    }

    private func write(_ bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw SystemError("send", errno: .last) }
            sent += count
        }
    }
}
