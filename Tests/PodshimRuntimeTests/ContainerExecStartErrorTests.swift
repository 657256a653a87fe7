import Glibc
import XCTest
@testable import PodshimProcess
@testable import PodshimRuntime
import PodshimSystem

/// Which start failures of an exec are the command's own (reported as its 127/126, as runc and a
/// shell do) and which are the exec's.
final class ContainerExecStartErrorTests: XCTestCase {
    func testOnlyExecveIsTheCommandsFailure() {
        XCTAssertTrue(SpawnError(stage: "execve", detail: "nope", errno: Errno(rawValue: ENOENT)).isExecve)
        XCTAssertFalse(SpawnError(stage: "chdir", detail: "/work", errno: Errno(rawValue: ENOENT)).isExecve)
        XCTAssertFalse(SpawnError(stage: "setup", detail: "(no execve within 30.0s)", errno: .timedOut).isExecve)
    }

    func testNotFoundIs127NotExecutableIs126AndTheRestIsNeither() {
        XCTAssertEqual(ContainerExec.StartError.exitCode(execveErrno: Errno(rawValue: ENOENT)), 127)
        for errno in [EACCES, EPERM, ENOEXEC, ENOTDIR, ELOOP, ENAMETOOLONG, ETXTBSY, EISDIR, ELIBBAD] {
            XCTAssertEqual(ContainerExec.StartError.exitCode(execveErrno: Errno(rawValue: errno)), 126, "errno \(errno)")
        }
        for errno in [ENOMEM, E2BIG, EMFILE, ENFILE, EAGAIN, EIO, EFAULT, EINVAL] {
            XCTAssertNil(ContainerExec.StartError.exitCode(execveErrno: Errno(rawValue: errno)), "errno \(errno)")
        }
    }
}
