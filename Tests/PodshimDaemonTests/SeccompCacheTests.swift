import Foundation
import PodshimRuntime
import PodshimSecurity
import XCTest
@testable import PodshimDaemon

/// The daemon's seccomp cache: built-in profiles compile once per capability set, localhost
/// profiles (files that may change) every time.
final class SeccompCacheTests: XCTestCase {
    private let configuration = RuntimeConfiguration(pauseBinary: "/nonexistent")

    func testRuntimeDefaultCompilesOncePerCapabilitySet() throws {
        let cache = SeccompCache()
        let first = try cache.filter(.runtimeDefault, capabilities: Capabilities.defaultSet, configuration: configuration, field: "f")
        let second = try cache.filter(.runtimeDefault, capabilities: Capabilities.defaultSet, configuration: configuration, field: "f")
        XCTAssertNotNil(first)
        XCTAssertEqual(first, second)
        XCTAssertEqual(cache.count, 1)
        _ = try cache.filter(.runtimeDefault, capabilities: Capabilities.all, configuration: configuration, field: "f")
        XCTAssertEqual(cache.count, 2, "another capability set is another program")
        XCTAssertNil(try cache.filter(.unconfined, capabilities: Capabilities.all, configuration: configuration, field: "f"))
    }

    func testLocalhostProfilesAreReadEachTime() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("seccomp-\(UUID().uuidString).json").path
        defer { try? FileManager.default.removeItem(atPath: path) } // a temp file of this test
        try Data(#"{"defaultAction": "SCMP_ACT_ALLOW"}"#.utf8).write(to: URL(fileURLWithPath: path))
        let cache = SeccompCache()
        let allow = try cache.filter(.localhost(path), capabilities: Capabilities.all, configuration: configuration, field: "f")
        try Data(#"{"defaultAction": "SCMP_ACT_ERRNO"}"#.utf8).write(to: URL(fileURLWithPath: path))
        let deny = try cache.filter(.localhost(path), capabilities: Capabilities.all, configuration: configuration, field: "f")
        XCTAssertNotEqual(allow, deny, "the changed file is compiled again")
        XCTAssertEqual(cache.count, 0)
    }
}
