import XCTest
import Synchronization
import PodshimCRI
import PodshimSystem
@testable import PodshimDaemon

/// ImageFsInfo's cache on a ManualClock: fresh answers are reused, stale or invalidated ones
/// are measured again.
final class FilesystemUsageCacheTests: XCTestCase {
    private func response(_ used: UInt64) -> Runtime_V1_ImageFsInfoResponse {
        var filesystem = Runtime_V1_FilesystemUsage()
        filesystem.usedBytes.value = used
        var response = Runtime_V1_ImageFsInfoResponse()
        response.imageFilesystems = [filesystem]
        return response
    }

    func testAnAnswerIsReusedUntilItIsOldOrTheStoreChanged() async {
        let clock = ManualClock()
        let cache = FilesystemUsageCache(timekeeper: clock, maxAge: 10)
        let measured = Mutex(0)
        let measure: () async -> Runtime_V1_ImageFsInfoResponse = { [self] in
            let count = measured.withLock { $0 += 1; return $0 }
            return response(UInt64(count))
        }
        let start = clock.now()
        var used = await cache.response(measure).imageFilesystems[0].usedBytes.value
        XCTAssertEqual(used, 1)
        clock.advance(to: start.advanced(bySeconds: 9.9))
        used = await cache.response(measure).imageFilesystems[0].usedBytes.value
        XCTAssertEqual(used, 1, "fresh: not measured again")
        clock.advance(to: start.advanced(bySeconds: 10))
        used = await cache.response(measure).imageFilesystems[0].usedBytes.value
        XCTAssertEqual(used, 2, "10 s old: measured again")
        cache.invalidate()
        used = await cache.response(measure).imageFilesystems[0].usedBytes.value
        XCTAssertEqual(used, 3, "a pull or a removal measures again at once")
        XCTAssertEqual(measured.withLock { $0 }, 3)
    }
}
