import Foundation
import XCTest
@testable import PodshimRuntime
import PodshimSpec

/// Shared fixtures for the runtime unit tests.
enum Fixture {
    static let configuration = RuntimeConfiguration(
        stateDirectory: "/run/x", rootDirectory: "/var/lib/x", logDirectory: "/var/log/x", pauseBinary: "/p")

    static func layout(_ pod: PodSpec, podID: String = "uid-1") -> PodLayout {
        PodLayout(pod: pod, podID: podID, configuration: configuration)
    }
}

/// A fresh directory under the system temporary directory; removed by `remove()`.
final class TemporaryDirectory {
    let path: String

    init() throws {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("podshim-rt-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Creates a directory (and its parents) below this one; returns its path.
    @discardableResult
    func makeDirectory(_ relative: String) throws -> String {
        let full = path + "/" + relative
        try FileManager.default.createDirectory(atPath: full, withIntermediateDirectories: true)
        return full
    }

    /// Creates a regular file below this one; returns its path.
    @discardableResult
    func makeFile(_ relative: String, contents: String = "") throws -> String {
        let full = path + "/" + relative
        let parent = (full as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: full, contents: Data(contents.utf8)) else {
            throw CocoaError(.fileWriteUnknown)
        }
        return full
    }
}

/// Runs `body`, which must throw; returns the error as `E` (failing the test when it does not throw
/// or throws something else).
func assertThrows<E: Error>(
    _ errorType: E.Type, file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> Void
) -> E? {
    do {
        try body()
        XCTFail("expected \(E.self) to be thrown", file: file, line: line)
        return nil
    } catch let error as E {
        return error
    } catch {
        XCTFail("expected \(E.self), got \(type(of: error)): \(error)", file: file, line: line)
        return nil
    }
}
