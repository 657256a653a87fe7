import Foundation
import Glibc
@testable import PodshimDaemon
import XCTest

/// sd_notify against a datagram socket standing in for systemd's.
final class SystemdNotifyTests: XCTestCase {
    private var directory = ""
    private var receiver: Int32 = -1

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "podshim-notify-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        if receiver >= 0 { close(receiver) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Binds a datagram socket at `name` (`\0`-led for the abstract namespace), as systemd does.
    private func bindReceiver(_ name: [UInt8]) throws {
        receiver = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        XCTAssertGreaterThanOrEqual(receiver, 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: name) }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + name.count)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(receiver, $0, length) }
        }
        XCTAssertEqual(result, 0, "bind: \(String(cString: strerror(errno)))")
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(receiver, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// One datagram, as text.
    private func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(receiver, &buffer, buffer.count, 0)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count], as: UTF8.self)
    }

    func testReadyReachesAPathSocket() throws {
        let path = directory + "/notify"
        try bindReceiver(Array(path.utf8))
        let message = SystemdNotify.readyMessage(status: "serving CRI on /run/podshim/podshim.sock")
        XCTAssertTrue(try SystemdNotify.notify(message, environment: ["NOTIFY_SOCKET": path]))
        XCTAssertEqual(receive(), "READY=1\nSTATUS=serving CRI on /run/podshim/podshim.sock\nMAINPID=\(getpid())")

        XCTAssertTrue(try SystemdNotify.notify(SystemdNotify.stoppingMessage(status: "stopping"), environment: ["NOTIFY_SOCKET": path]))
        XCTAssertEqual(receive(), "STOPPING=1\nSTATUS=stopping")
    }

    func testAbstractSocket() throws {
        let name = "podshim-notify-test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try bindReceiver([0] + Array(name.utf8))
        XCTAssertTrue(try SystemdNotify.notify("READY=1", environment: ["NOTIFY_SOCKET": "@" + name]))
        XCTAssertEqual(receive(), "READY=1")
    }

    func testUnsetSendsNothing() throws {
        XCTAssertFalse(try SystemdNotify.notify("READY=1", environment: [:]))
        XCTAssertFalse(try SystemdNotify.notify("READY=1", environment: ["NOTIFY_SOCKET": ""]))
    }

    func testBadAddresses() {
        XCTAssertThrowsError(try SystemdNotify.notify("READY=1", environment: ["NOTIFY_SOCKET": "relative/notify"])) {
            XCTAssertTrue("\($0)".contains("neither an absolute path"), "\($0)")
        }
        XCTAssertThrowsError(try SystemdNotify.send("READY=1", to: "/" + String(repeating: "x", count: 200))) {
            XCTAssertTrue("\($0)".contains("not a usable socket address"), "\($0)")
        }
        // Nobody listening: an error naming the path, not a crash or a hang.
        XCTAssertThrowsError(try SystemdNotify.send("READY=1", to: directory + "/nobody")) {
            XCTAssertTrue("\($0)".contains("sendto \(self.directory)/nobody"), "\($0)")
        }
    }

    func testStatusStaysOneLine() {
        XCTAssertEqual(SystemdNotify.readyMessage(status: "a\nb", pid: 42), "READY=1\nSTATUS=a b\nMAINPID=42")
    }
}
