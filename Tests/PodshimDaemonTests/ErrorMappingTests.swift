import GRPCCore
@testable import PodshimProcess
import PodshimRuntime
import PodshimSpec
import PodshimSystem
import XCTest
@testable import PodshimDaemon

/// PodshimError → gRPC status, the one mapping: every code has its own status, the message is the
/// error's description, and errors of the layers below keep their operation, subject and errno.
final class ErrorMappingTests: XCTestCase {
    func testEveryCodeMapsToItsOwnStatus() {
        let statuses = PodshimError.Code.allCases.map { RPCError(PodshimError($0)).code }
        XCTAssertEqual(Set(statuses.map(\.rawValue)).count, PodshimError.Code.allCases.count, "one-to-one")
        XCTAssertEqual(RPCError(PodshimError(.notFound)).code, .notFound)
        XCTAssertEqual(RPCError(PodshimError(.internal)).code, .internalError)
        XCTAssertEqual(RPCError(PodshimError(.unimplemented)).code, .unimplemented)
        XCTAssertFalse(statuses.contains(.unknown), "nothing is UNKNOWN")
    }

    func testTheMessageNamesOperationSubjectAndProblem() {
        XCTAssertEqual(RPCError(CRIError.invalidArgument("config.linux.resources.cpu_quota", "must not be negative")).message,
                       "config.linux.resources.cpu_quota: must not be negative")
        XCTAssertEqual(RPCError(CRIError.notFound("container", "abc")).message, "container \"abc\" not found")
        XCTAssertEqual(RPCError(CRIError.unimplemented("PortForward")).message, "PortForward: not implemented by podshim")
    }

    func testASystemErrorKeepsItsErrnoAndSubject() {
        let mapped = SystemError("mount tmpfs", path: "/run/x", errno: .notPermitted).podshimError
        XCTAssertEqual(mapped.errno, .notPermitted)
        XCTAssertEqual(mapped.subject, "/run/x")
        XCTAssertEqual(mapped.description, "mount tmpfs /run/x: EPERM")
        XCTAssertEqual(SystemError("open", path: "/x", errno: .noSuchFileOrDirectory).podshimError.code, .notFound)
        XCTAssertEqual(SystemError("write", path: "/x", errno: .noSpace).podshimError.code, .resourceExhausted)
    }

    func testLowerLayerErrorsThrownUnwrappedAreNeverUnknown() {
        XCTAssertEqual(RPCError(SystemError("pidfd_open", path: "pid 7", errno: .noSuchProcess)).code, .notFound)
        XCTAssertEqual(RPCError(ManifestError(path: "spec.containers[0].image", message: "required")).code, .invalidArgument)
        XCTAssertEqual(RPCError(ManifestError(path: "spec.containers[0].image", message: "required")).message,
                       "spec.containers[0].image: required")
        XCTAssertEqual(RPCError(PodError("container app", message: "execve: ENOENT")).message, "container app: execve: ENOENT")
    }

    func testAPodErrorKeepsItsCausesCodeAndErrno() {
        let full = PodError("volume cache", SystemError("mkdir", path: "/var/lib/podshim/v", errno: .noSpace)).podshimError
        XCTAssertEqual(full.code, .resourceExhausted)
        XCTAssertEqual(full.errno, .noSpace)
        XCTAssertEqual(full.description, "volume cache: mkdir /var/lib/podshim/v: ENOSPC")
        // A file of podshim's own that is missing is podshim's failure, not "the object is gone".
        let missing = PodError("container app", SystemError("open", path: "/x", errno: .noSuchFileOrDirectory)).podshimError
        XCTAssertEqual(missing.code, .internal)
        XCTAssertEqual(missing.errno, .noSuchFileOrDirectory)
        XCTAssertEqual(PodError("container app", message: "subPath escapes", code: .invalidArgument).podshimError.code, .invalidArgument)
    }

    func testASpawnErrorNamesItsStageAndATimeoutIsADeadline() {
        let spawn = SpawnError(stage: "execve", detail: "nope", errno: .noSuchFileOrDirectory)
        XCTAssertEqual(PodError("container app", spawn).description, "container app: execve nope: ENOENT")
        XCTAssertEqual(PodshimError.from(spawn).errno, .noSuchFileOrDirectory)
        XCTAssertEqual(PodshimError.from(SpawnError(stage: "setup", detail: nil, errno: .timedOut)).code, .deadlineExceeded)
    }
}
