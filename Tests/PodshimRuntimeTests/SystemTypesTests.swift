import Foundation
import XCTest
@testable import PodshimRuntime
@testable import PodshimProcess
@testable import PodshimSystem
import Glibc

/// Signals, exit statuses, system errors, mountinfo unescaping, process identities and file helpers.
final class SystemTypesTests: XCTestCase {
    private var temporary: TemporaryDirectory!

    override func setUpWithError() throws {
        temporary = try TemporaryDirectory()
    }

    override func tearDown() {
        temporary?.remove()
        temporary = nil
    }

    // MARK: Signal

    func testSignalParsingNames() {
        XCTAssertEqual(Signal(parsing: "SIGTERM"), .terminate)
        XCTAssertEqual(Signal(parsing: "TERM"), .terminate)
        XCTAssertEqual(Signal(parsing: "sigkill"), .kill)
        XCTAssertEqual(Signal(parsing: "kill"), .kill)
        XCTAssertEqual(Signal(parsing: "SigHup"), .hangup)
        XCTAssertEqual(Signal(parsing: "USR1"), .user1)
        XCTAssertEqual(Signal(parsing: "SIGSTKFLT")?.rawValue, 16)
        XCTAssertEqual(Signal(parsing: "SIGTERM")?.rawValue, 15)
    }

    func testSignalParsingNumbers() {
        XCTAssertEqual(Signal(parsing: "9"), .kill)
        XCTAssertEqual(Signal(parsing: "1")?.rawValue, 1)
        XCTAssertEqual(Signal(parsing: "64")?.rawValue, 64)
        XCTAssertNil(Signal(parsing: "0"))
        XCTAssertNil(Signal(parsing: "65"))
        XCTAssertNil(Signal(parsing: "-9"))
    }

    func testSignalParsingRejectsUnknown() {
        for text in ["FOO", "SIGFOO", "", "SIG", " TERM", "TERM ", "9x", "SIG9"] {
            XCTAssertNil(Signal(parsing: text), text.debugDescription)
        }
    }

    func testSignalNames() {
        XCTAssertEqual(Signal.terminate.name, "SIGTERM")
        XCTAssertEqual(Signal.kill.name, "SIGKILL")
        XCTAssertEqual(Signal.interrupt.name, "SIGINT")
        XCTAssertEqual(Signal.quit.name, "SIGQUIT")
        XCTAssertEqual(Signal.user2.name, "SIGUSR2")
        XCTAssertEqual(Signal(rawValue: SIGCHLD).name, "SIGCHLD")
        XCTAssertEqual(Signal(rawValue: 16).name, "SIGSTKFLT")
        XCTAssertEqual(Signal(rawValue: 42).name, "SIG42")
        XCTAssertEqual(Signal.kill.description, "SIGKILL")
    }

    func testSignalConstantsMatchLinuxNumbers() {
        XCTAssertEqual(Signal.hangup.rawValue, 1)
        XCTAssertEqual(Signal.interrupt.rawValue, 2)
        XCTAssertEqual(Signal.quit.rawValue, 3)
        XCTAssertEqual(Signal.kill.rawValue, 9)
        XCTAssertEqual(Signal.user1.rawValue, 10)
        XCTAssertEqual(Signal.user2.rawValue, 12)
        XCTAssertEqual(Signal.terminate.rawValue, 15)
    }

    func testEveryNamedSignalRoundTrips() {
        for number in Int32(1)...31 {
            let signal = Signal(rawValue: number)
            XCTAssertEqual(Signal(parsing: signal.name), signal, "signal \(number) named \(signal.name)")
        }
    }

    // MARK: ExitStatus

    func testExitStatusCode() {
        XCTAssertEqual(ExitStatus.exited(code: 0).code, 0)
        XCTAssertEqual(ExitStatus.exited(code: 3).code, 3)
        XCTAssertEqual(ExitStatus.signaled(.kill, coreDumped: false).code, 137)
        XCTAssertEqual(ExitStatus.signaled(.terminate, coreDumped: false).code, 143)
    }

    func testExitStatusDescription() {
        XCTAssertEqual(ExitStatus.exited(code: 3).description, "exit code 3")
        XCTAssertEqual(ExitStatus.signaled(.kill, coreDumped: false).description, "killed by SIGKILL (exit code 137)")
        XCTAssertEqual(ExitStatus.signaled(Signal(rawValue: SIGSEGV), coreDumped: true).description,
                       "killed by SIGSEGV (exit code 139), core dumped")
    }

    // MARK: SystemError and Errno

    func testSystemErrorDescriptionWithPath() {
        XCTAssertEqual(SystemError("mount", path: "/x", errno: Errno(rawValue: EPERM)).description, "mount /x: EPERM")
    }

    func testSystemErrorDescriptionWithoutPath() {
        XCTAssertEqual(SystemError("setns(net)", errno: Errno(rawValue: EINVAL)).description, "setns(net): EINVAL")
    }

    func testSystemErrorFromNegatedErrno() {
        let error = SystemError("umount", path: "/y", negatedErrno: -EBUSY)
        XCTAssertEqual(error.errno, Errno(rawValue: EBUSY))
        XCTAssertEqual(error.description, "umount /y: EBUSY")
        XCTAssertEqual(error, SystemError("umount", path: "/y", errno: .resourceBusy))
    }

    func testErrnoSymbolicNames() {
        XCTAssertEqual(Errno(rawValue: 1).symbolicName, "EPERM")
        XCTAssertEqual(Errno(rawValue: ENOENT).symbolicName, "ENOENT")
        XCTAssertEqual(Errno(rawValue: EACCES).symbolicName, "EACCES")
        XCTAssertEqual(Errno(rawValue: ENOSPC).symbolicName, "ENOSPC")
        XCTAssertEqual(Errno(rawValue: EOPNOTSUPP).symbolicName, "EOPNOTSUPP")
        XCTAssertEqual(Errno(rawValue: EDQUOT).symbolicName, "EDQUOT")
        XCTAssertEqual(Errno(rawValue: 4242).symbolicName, "errno 4242")
        XCTAssertEqual(Errno(rawValue: 0).symbolicName, "errno 0")
    }

    func testSystemCallReportsNegatedErrno() {
        let error = assertThrows(SystemError.self) {
            try systemCall("pidfd_open", path: "pid 1") { -ESRCH }
        }
        XCTAssertEqual(error, SystemError("pidfd_open", path: "pid 1", errno: Errno(rawValue: ESRCH)))
    }

    func testSystemCallRetriesEINTR() throws {
        var calls = 0
        let result = try systemCall("op") { () -> Int32 in
            calls += 1
            return calls < 3 ? -EINTR : 7
        }
        XCTAssertEqual(result, 7)
        XCTAssertEqual(calls, 3)
    }

    func testLibcCallReportsErrno() {
        let path = temporary.path + "/missing/file"
        let error = assertThrows(SystemError.self) {
            try libcCall("open", path: path) { open(path, O_RDONLY) }
        }
        XCTAssertEqual(error, SystemError("open", path: path, errno: Errno(rawValue: ENOENT)))
    }

    // MARK: mountinfo

    func testUnescapeMountPath() {
        XCTAssertEqual(Mounts.unescapeMountPath("/a\\040b"), "/a b")
        XCTAssertEqual(Mounts.unescapeMountPath("/plain/path"), "/plain/path")
        XCTAssertEqual(Mounts.unescapeMountPath("/t\\011ab\\012nl\\134bs"), "/t\tab\nnl\\bs")
        XCTAssertEqual(Mounts.unescapeMountPath("/x\\040\\040y"), "/x  y")
    }

    func testUnescapeMountPathKeepsMalformedEscapes() {
        XCTAssertEqual(Mounts.unescapeMountPath("/end\\"), "/end\\")
        XCTAssertEqual(Mounts.unescapeMountPath("/short\\04"), "/short\\04")
        XCTAssertEqual(Mounts.unescapeMountPath("/bad\\9zz"), "/bad\\9zz")
    }

    func testMountPointsUnderATemporaryDirectoryIsEmpty() {
        XCTAssertEqual(Mounts.mountPoints(under: temporary.path), [])
        XCTAssertTrue(Mounts.mountTable().contains("/"), "the root mount is in /proc/self/mountinfo")
    }

    func testMountPointsMatchTheMountTable() throws {
        // The byte scan finds what the parsed table holds, for the root and for a prefix.
        let table = Mounts.mountTable()
        XCTAssertEqual(Set(Mounts.mountPoints(under: "/")), Set(table))
        XCTAssertEqual(Set(Mounts.mountPoints(under: "/proc")), Set(table.filter { $0 == "/proc" || $0.hasPrefix("/proc/") }))
        guard geteuid() == 0 else { throw XCTSkip("mounting needs root") }
        let spaced = temporary.path + "/d ir/in"
        let deep = temporary.path + "/d"
        let sibling = temporary.path + "/dd"
        for path in [spaced, deep, sibling] { try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true) }
        for path in [spaced, deep, sibling] { try Mounts.mountTmpfs(at: path, options: "size=64k") }
        defer { for path in [spaced, deep, sibling] { try? Mounts.unmount(path) } }  // best effort: the temp dir goes anyway
        XCTAssertEqual(Mounts.mountPoints(under: temporary.path), [spaced, sibling, deep])
        XCTAssertEqual(Mounts.mountPoints(under: deep), [deep], "/d does not take /dd")
        XCTAssertEqual(Mounts.mountPoints(under: deep + "/"), [deep])
        XCTAssertEqual(Mounts.mountPoints(under: temporary.path + "/d ir"), [spaced])
    }

    func testRemoveTreeDetachesEveryKindOfMountOnTheWayDown() throws {
        guard geteuid() == 0 else { throw XCTSkip("mounting needs root") }
        XCTAssertEqual(Mounts.isMountRoot("/"), Mounts.reportsMountRoots ? true : nil)
        // A tmpfs, a bind mount of a directory of the same filesystem (same st_dev), a bind-mounted
        // file, two tmpfs stacked on one directory, and a tree whose root is itself a mount.
        let root = temporary.path + "/tree"
        let source = temporary.path + "/source"
        let file = source + "/file"
        for path in [root + "/tmp", root + "/bound", root + "/stack", root + "/a/b", source] {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        }
        try "x".write(toFile: file, atomically: false, encoding: .utf8)
        try "y".write(toFile: root + "/a/b/file", atomically: false, encoding: .utf8)
        try Mounts.mountTmpfs(at: root + "/tmp", options: "size=64k")
        XCTAssertEqual(mount(source, root + "/bound", nil, UInt(MS_BIND), nil), 0)
        XCTAssertEqual(mount(file, root + "/a/b/file", nil, UInt(MS_BIND), nil), 0)
        try Mounts.mountTmpfs(at: root + "/stack", options: "size=64k")
        try Mounts.mountTmpfs(at: root + "/stack", options: "size=64k")
        let mounted = temporary.path + "/mounted"
        try FileManager.default.createDirectory(atPath: mounted, withIntermediateDirectories: true)
        try Mounts.mountTmpfs(at: mounted, options: "size=64k")
        try FileManager.default.createDirectory(atPath: mounted + "/inside", withIntermediateDirectories: true)
        defer { for path in Mounts.mountPoints(under: temporary.path) { try? Mounts.unmount(path) } }  // only after a failure
        if Mounts.reportsMountRoots {
            XCTAssertEqual(Mounts.isMountRoot(root + "/bound"), true, "same st_dev, still a mount root")
            XCTAssertEqual(Mounts.isMountRoot(root + "/a/b/file"), true)
            XCTAssertEqual(Mounts.isMountRoot(root + "/a"), false)
        }

        try FileSystem.removeTree(root)
        try FileSystem.removeTree(mounted)
        XCTAssertFalse(FileManager.default.fileExists(atPath: root))
        XCTAssertFalse(FileManager.default.fileExists(atPath: mounted))
        XCTAssertEqual(Mounts.mountPoints(under: temporary.path), [])
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), "x", "the bind mount's source is untouched")
    }

    // MARK: ProcessIdentity

    /// A /proc/<pid>/stat line whose fields 3… are numbered so an off-by-one shows.
    private func statLine(comm: String, fieldCount: Int = 52) -> String {
        var fields = ["1234", "(\(comm))", "S"]
        for number in 4...fieldCount { fields.append(number == 22 ? "98765" : String(number * 100)) }
        return fields.joined(separator: " ") + "\n"
    }

    func testParseStatWithPlainComm() {
        XCTAssertEqual(ProcessIdentity.parse(stat: statLine(comm: "sleep")), 98765)
    }

    func testParseStatWithSpacesAndParenthesesInComm() {
        let line = statLine(comm: "a b) c")
        XCTAssertTrue(line.hasPrefix("1234 (a b) c) S 400 500 "))
        XCTAssertEqual(ProcessIdentity.parse(stat: line), 98765)
        XCTAssertEqual(ProcessIdentity.parse(stat: statLine(comm: ") ) (")), 98765)
    }

    func testParseStatWithExactlyTwentyTwoFields() {
        // Field 22 is the last one; without a trailing newline it parses.
        let line = statLine(comm: "x", fieldCount: 22).dropLast()
        XCTAssertEqual(ProcessIdentity.parse(stat: String(line)), 98765)
    }

    func testParseStatRejectsTruncatedLines() {
        XCTAssertNil(ProcessIdentity.parse(stat: "1234 (a b) c) S 1 2 3"))
        XCTAssertNil(ProcessIdentity.parse(stat: statLine(comm: "x", fieldCount: 21)))
        XCTAssertNil(ProcessIdentity.parse(stat: "1234 (no close paren S 1 2 3"))
        XCTAssertNil(ProcessIdentity.parse(stat: ""))
    }

    func testParseStatRejectsNonNumericStartTime() {
        let line = statLine(comm: "x").replacingOccurrences(of: "98765", with: "abc")
        XCTAssertNil(ProcessIdentity.parse(stat: line))
    }

    func testIdentityOfThisProcess() throws {
        let identity = try XCTUnwrap(ProcessIdentity.of(pid: getpid()))
        XCTAssertEqual(identity.pid, getpid())
        XCTAssertTrue(identity.isAlive)
        XCTAssertEqual(ProcessIdentity.of(pid: getpid()), identity, "start time is stable")
    }

    func testIdentityWithAnotherStartTimeIsNotAlive() throws {
        let identity = try XCTUnwrap(ProcessIdentity.of(pid: getpid()))
        XCTAssertFalse(ProcessIdentity(pid: identity.pid, startTime: identity.startTime &+ 1).isAlive)
    }

    func testIdentityOfMissingProcessIsNil() {
        XCTAssertNil(ProcessIdentity.of(pid: Int32.max))
        XCTAssertNil(ProcessIdentity.of(pid: -1))
        XCTAssertFalse(ProcessIdentity(pid: Int32.max, startTime: 1).isAlive)
    }

    func testPodStateRecordRoundTripsThroughJSON() throws {
        var record = PodStateRecord(name: "web", namespace: "default", podID: "u",
                                    owner: ProcessIdentity(pid: 10, startTime: 20),
                                    stateDirectory: "/run/x/pods/u", dataDirectory: "/var/lib/x/pods/u")
        XCTAssertNil(record.sandbox)
        XCTAssertEqual(record.containers, [:])
        record.sandbox = ProcessIdentity(pid: 11, startTime: 21)
        record.containers = ["app": ProcessIdentity(pid: 12, startTime: 22)]
        let decoded = try JSONDecoder().decode(PodStateRecord.self, from: JSONEncoder().encode(record))
        XCTAssertEqual(decoded, record)
    }

    // MARK: FileSystem

    func testWriteAtomicallyWritesContent() throws {
        let path = temporary.path + "/state.json"
        try FileSystem.writeAtomically(path, "{\"a\":1}\n")
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "{\"a\":1}\n")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: temporary.path), ["state.json"])
    }

    func testWriteAtomicallyReplacesAndLeavesNoTemporaryFile() throws {
        let path = temporary.path + "/hosts"
        try FileSystem.writeAtomically(path, "a long first version\n")
        try FileSystem.writeAtomically(path, "short\n")
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "short\n")
        let entries = try FileManager.default.contentsOfDirectory(atPath: temporary.path)
        XCTAssertEqual(entries, ["hosts"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: path + ".tmp.\(getpid())"))
    }

    func testWriteAtomicallyEmptyAndLargeContent() throws {
        let empty = temporary.path + "/empty"
        try FileSystem.writeAtomically(empty, "")
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: empty)).count, 0)

        let large = temporary.path + "/large"
        let text = String(repeating: "0123456789abcdef", count: 64 * 1024) + "é"
        try FileSystem.writeAtomically(large, text)
        XCTAssertEqual(try String(contentsOfFile: large, encoding: .utf8), text)
    }

    func testWriteAtomicallyUsesMode() throws {
        let path = temporary.path + "/secret"
        try FileSystem.writeAtomically(path, "x", mode: 0o600)
        var info = stat()
        XCTAssertEqual(lstat(path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o600)
    }

    func testWriteAtomicallyIntoMissingDirectoryFails() {
        let path = temporary.path + "/missing/file"
        let error = assertThrows(SystemError.self) { try FileSystem.writeAtomically(path, "x") }
        XCTAssertEqual(error?.operation, "open")
        XCTAssertEqual(error?.errno, Errno(rawValue: ENOENT))
        XCTAssertTrue(error?.path?.hasPrefix(path + ".tmp.\(getpid()).") == true, String(describing: error))
    }

    func testCreateDirectoryCreatesParents() throws {
        let path = temporary.path + "/a/b/c"
        try FileSystem.createDirectory(path, mode: 0o700)
        var isDirectory: ObjCBool = false
        XCTAssertTrue(FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory))
        XCTAssertTrue(isDirectory.boolValue)
        var info = stat()
        XCTAssertEqual(lstat(path, &info), 0)
        XCTAssertEqual(info.st_mode & 0o777, 0o700)
        try FileSystem.createDirectory(path) // existing is fine
    }

    func testRemoveTreeRemovesNestedTreeButNotSymlinkTargets() throws {
        let outside = try temporary.makeDirectory("outside")
        let keep = try temporary.makeFile("outside/keep.txt", contents: "keep me")
        let outsideFile = try temporary.makeFile("outside-file.txt", contents: "me too")

        let root = try temporary.makeDirectory("tree")
        try temporary.makeDirectory("tree/a/b/c")
        try temporary.makeFile("tree/a/b/c/deep.txt", contents: "deep")
        try temporary.makeFile("tree/a/top.txt")
        try temporary.makeFile("tree/.hidden")
        try FileManager.default.createSymbolicLink(atPath: root + "/a/b/to-outside", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: root + "/file-link", withDestinationPath: outsideFile)
        try FileManager.default.createSymbolicLink(atPath: root + "/dangling", withDestinationPath: "/nonexistent/x")
        XCTAssertEqual(mkfifo(root + "/fifo", 0o600), 0)

        try FileSystem.removeTree(root)

        XCTAssertFalse(FileManager.default.fileExists(atPath: root))
        XCTAssertEqual(try String(contentsOfFile: keep, encoding: .utf8), "keep me")
        XCTAssertEqual(try String(contentsOfFile: outsideFile, encoding: .utf8), "me too")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside), ["keep.txt"])
    }

    func testRemoveTreeOfASymlinkRemovesOnlyTheLink() throws {
        let target = try temporary.makeDirectory("target")
        try temporary.makeFile("target/file")
        let link = temporary.path + "/link"
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)

        try FileSystem.removeTree(link)

        var info = stat()
        XCTAssertEqual(lstat(link, &info), -1, "the link is gone")
        XCTAssertTrue(FileManager.default.fileExists(atPath: target + "/file"))
    }

    func testRemoveTreeOfAFile() throws {
        let file = try temporary.makeFile("single")
        try FileSystem.removeTree(file)
        XCTAssertFalse(FileManager.default.fileExists(atPath: file))
    }

    func testResolvedInsideARootRefusesSymlinksThatLeaveIt() throws {
        let root = try temporary.makeDirectory("image")
        let inside = try temporary.makeFile("image/etc/passwd", contents: "root:x:0:0::/:/bin/sh\n")
        let outside = try temporary.makeFile("host-secret")
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/group", withDestinationPath: outside)
        try FileManager.default.createSymbolicLink(atPath: root + "/etc/relative", withDestinationPath: "passwd")
        XCTAssertEqual(FileSystem.resolved(root + "/etc/passwd", inside: root), FileSystem.resolved(inside))
        XCTAssertEqual(FileSystem.resolved(root + "/etc/relative", inside: root), FileSystem.resolved(inside))
        XCTAssertNil(FileSystem.resolved(root + "/etc/group", inside: root), "a symlink out of the root")
        XCTAssertNil(FileSystem.resolved(root + "/etc/missing", inside: root))
        XCTAssertEqual(FileSystem.resolved(root, inside: root), FileSystem.resolved(root), "the root itself")
        let sibling = try temporary.makeDirectory("imagex")
        XCTAssertNil(FileSystem.resolved(sibling, inside: root), "a sibling sharing the prefix is not inside")
    }

    func testRemoveTreeOfAMissingPathIsFine() throws {
        let sibling = try temporary.makeFile("kept")
        XCTAssertNoThrow(try FileSystem.removeTree(temporary.path + "/does/not/exist"))
        XCTAssertNoThrow(try FileSystem.removeTree(temporary.path + "/nothing"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: sibling), "nothing else is touched")
        XCTAssertFalse(FileManager.default.fileExists(atPath: temporary.path + "/does"), "nothing is created")
    }
}

final class MountInfoTests: XCTestCase {
    let table = """
    22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
    30 22 0:5 / /tmp rw master:4 - tmpfs tmpfs rw
    31 22 8:1 /srv /mnt/data rw - ext4 /dev/vda rw
    32 31 0:6 / /mnt/data/inner rw shared:9 - tmpfs tmpfs rw
    """

    func testTheLongestMountPointHoldsThePath() {
        XCTAssertEqual(MountInfo.propagation(of: "/var/lib", mountinfo: table),
                       MountInfo.Propagation(mountPoint: "/", shared: true, slave: false))
        XCTAssertEqual(MountInfo.propagation(of: "/tmp/x", mountinfo: table)?.slave, true)
        let data = MountInfo.propagation(of: "/mnt/data/x", mountinfo: table)
        XCTAssertEqual(data?.mountPoint, "/mnt/data")
        XCTAssertEqual(data?.shared, false)
        XCTAssertEqual(MountInfo.propagation(of: "/mnt/data/inner", mountinfo: table)?.shared, true)
        XCTAssertEqual(MountInfo.propagation(of: "/mnt/database", mountinfo: table)?.mountPoint, "/")
    }
}

/// Kernel files are read to EOF: stat says 0 bytes for them, and a reader that trusts it gets a page.
final class KernelFileTests: XCTestCase {
    func testAProcFileLongerThanAPageIsReadWhole() throws {
        let maps = try FileSystem.readKernelFile("/proc/self/maps")
        XCTAssertGreaterThan(maps.utf8.count, 4096, "this test process maps more than a page of lines")
        XCTAssertTrue(maps.hasSuffix("\n"))
        XCTAssertTrue(maps.contains("[stack]"), "the last lines are there too")
    }

    func testAMissingFileNamesItsPathAndErrno() {
        XCTAssertThrowsError(try FileSystem.readKernelFile("/proc/self/no-such-file")) { error in
            XCTAssertEqual((error as? SystemError)?.errno, .noSuchFileOrDirectory)
            XCTAssertEqual((error as? SystemError)?.path, "/proc/self/no-such-file")
        }
    }
}
