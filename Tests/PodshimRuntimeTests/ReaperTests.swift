import Foundation
import Glibc
@testable import PodshimSystem
import XCTest

/// The reaper under concurrent spawns: every child's exit reaches the handler registered for it,
/// exactly once, with its own status — also when the child exits before its spawn registered it.
final class ReaperTests: XCTestCase {
    private final class Results: @unchecked Sendable { // guarded by lock
        let lock = NSLock()
        var codes: [Int: [Int32]] = [:]
        func add(_ index: Int, _ code: Int32) { lock.withLock { codes[index, default: []].append(code) } }
    }

    func testConcurrentSpawnsEachGetTheirOwnExit() throws {
        let results = Results()
        let total = 120
        let done = DispatchGroup()
        for _ in 0..<total { done.enter() }
        DispatchQueue.concurrentPerform(iterations: total) { index in
            let code = Int32(index % 100)
            let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/sh"), strdup("-c"), strdup("exit \(code)"), nil]
            defer { argv.forEach { free($0) } }
            let result: Int32 = Reaper.shared.spawn({
                var pid: pid_t = 0
                let rc = posix_spawn(&pid, "/bin/sh", nil, nil, argv, environ)
                return (pid: rc == 0 ? pid : 0, value: rc)
            }, onExit: { status in
                if case .exited(let exitCode) = status { results.add(index, exitCode) } else { results.add(index, -1) }
                done.leave()
            })
            if result != 0 {
                results.add(index, -2)
                done.leave()
            }
        }
        XCTAssertEqual(done.wait(timeout: .now() + 60), .success, "every exit was delivered")
        results.lock.withLock {
            XCTAssertEqual(results.codes.count, total)
            for (index, codes) in results.codes {
                XCTAssertEqual(codes, [Int32(index % 100)], "spawn \(index) got its own exit, once")
            }
        }
    }
}
