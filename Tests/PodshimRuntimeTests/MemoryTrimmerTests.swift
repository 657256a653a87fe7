import XCTest
import Synchronization
import PodshimSystem

/// MemoryTrimmer on a ManualClock: one trim after the last release of a burst, none before.
final class MemoryTrimmerTests: XCTestCase {
    func testOneTrimAfterTheLastReleaseOfABurst() {
        let clock = ManualClock()
        let trims = Mutex(0)
        let done = DispatchSemaphore(value: 0)
        let trimmer = MemoryTrimmer(timekeeper: clock, delay: 2, trim: {
            trims.withLock { $0 += 1 }
            done.signal()
        })
        let start = clock.now()
        trimmer.released()
        clock.advance(to: start.advanced(bySeconds: 1.5))
        trimmer.released() // the burst goes on: the trim moves to 3.5 s
        clock.advance(to: start.advanced(bySeconds: 3))
        XCTAssertEqual(done.wait(timeout: .now() + 0.2), .timedOut, "no trim while releases keep coming")
        clock.advance(to: start.advanced(bySeconds: 3.5))
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(trims.withLock { $0 }, 1)
        trimmer.released()
        clock.advance(to: start.advanced(bySeconds: 6))
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success)
        XCTAssertEqual(trims.withLock { $0 }, 2)
    }
}
