import Foundation
import Glibc
@testable import PodshimDaemon
import XCTest

/// The socket's safety rules, on temporary directories (no root needed for most of them).
final class DaemonSocketTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "podshim-socket-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        chmod(directory, 0o755)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory)
    }

    func testWorldWritableDirectoryIsRefused() {
        chmod(directory, 0o777)
        XCTAssertThrowsError(try DaemonSocket.prepareDirectory(directory)) { error in
            XCTAssertTrue("\(error)".contains("world-writable"), "\(error)")
        }
    }

    func testMissingDirectoryIsCreatedPrivate() throws {
        let socketDirectory = directory + "/run/podshim"
        try DaemonSocket.prepareDirectory(socketDirectory)
        var info = stat()
        XCTAssertEqual(stat(socketDirectory, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o711)
    }

    func testSymlinkedDirectoryIsRefused() throws {
        try FileManager.default.createSymbolicLink(atPath: directory + "/link", withDestinationPath: directory)
        XCTAssertThrowsError(try DaemonSocket.prepareDirectory(directory + "/link")) { error in
            XCTAssertTrue("\(error)".contains("is not a directory (or is a symlink)"), "\(error)")
        }
    }

    func testSocketIsCreated0660AndAStaleOneIsReplaced() throws {
        let path = directory + "/d.sock"
        var first = DaemonSocket(path: path, group: nil)
        try first.bindAndListen()
        var info = stat()
        XCTAssertEqual(lstat(path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o660)
        XCTAssertEqual(info.st_mode & S_IFMT, S_IFSOCK)

        // A second daemon while the first listens (and holds the lock): refused.
        var second = DaemonSocket(path: path, group: nil)
        XCTAssertThrowsError(try second.bindAndListen()) { error in
            XCTAssertTrue("\(error)".contains("another podshim serve holds \(path).lock"), "\(error)")
        }

        // The first "crashes": its listening socket and lock go, the socket file stays.
        close(first.descriptor)
        close(first.lockDescriptor)
        XCTAssertEqual(lstat(path, &info), 0, "a stale socket file remains")
        var third = DaemonSocket(path: path, group: nil)
        try third.bindAndListen()
        close(third.descriptor)
        third.remove()
    }

    func testALiveSocketIsNeverTaken() throws {
        // A listener that is not a podshim (no lock file held): still never stolen.
        let path = directory + "/live.sock"
        var holder = DaemonSocket(path: path, group: nil)
        try holder.bindAndListen()
        close(holder.lockDescriptor) // the lock is gone, the listener is alive
        var intruder = DaemonSocket(path: path, group: nil)
        XCTAssertThrowsError(try intruder.bindAndListen()) { error in
            XCTAssertTrue("\(error)".contains("live"), "\(error)")
        }
        close(holder.descriptor)
        unlink(path)
    }

    func testARegularFileIsNotReplaced() throws {
        let path = directory + "/file.sock"
        _ = FileManager.default.createFile(atPath: path, contents: Data("keep".utf8))
        var socket = DaemonSocket(path: path, group: nil)
        XCTAssertThrowsError(try socket.bindAndListen()) { error in
            XCTAssertTrue("\(error)".contains("exists and is not a socket"), "\(error)")
        }
        XCTAssertEqual(FileManager.default.contents(atPath: path), Data("keep".utf8))
    }

    func testPeerPolicy() {
        XCTAssertTrue(PeerPolicy(group: nil).allows(uid: 0, gid: 0, pid: getpid()))
        XCTAssertFalse(PeerPolicy(group: nil).allows(uid: 1000, gid: 1000, pid: getpid()))
        XCTAssertTrue(PeerPolicy(group: 1234).allows(uid: 1000, gid: 1234, pid: getpid()))
        XCTAssertFalse(PeerPolicy(group: 1234).allows(uid: 1000, gid: 1000, pid: -1))
    }
}
