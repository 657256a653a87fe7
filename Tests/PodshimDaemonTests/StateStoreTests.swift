import Foundation
import XCTest
@testable import PodshimDaemon

/// The daemon's record files: written whole (never a torn record), read back, and the temporary
/// files a daemon killed mid-write leaves are gone at the next start.
final class StateStoreTests: XCTestCase {
    private var directory: String!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("podshim-store-\(UUID().uuidString)").path
    }

    override func tearDown() {
        try? FileManager.default.removeItem(atPath: directory) // a temp dir of this test
    }

    func testRecordsRoundTripAndStrayTemporaryFilesAreRemovedAtStart() throws {
        let store = StateStore(stateDirectory: directory)
        try store.prepare()
        let record = SandboxRecord(id: "abc", config: "{}", createdAt: 1, ready: false, creating: true)
        try store.save(record)
        // What a daemon SIGKILLed between open and rename leaves behind.
        let stray = store.sandboxDirectory + "/abc.json.tmp.1234.5678"
        XCTAssertTrue(FileManager.default.createFile(atPath: stray, contents: Data("{\"id\":".utf8)))
        let strayContainer = store.containerDirectory + "/def.json.tmp.99.1"
        XCTAssertTrue(FileManager.default.createFile(atPath: strayContainer, contents: Data()))
        try store.prepare()
        XCTAssertFalse(FileManager.default.fileExists(atPath: stray))
        XCTAssertFalse(FileManager.default.fileExists(atPath: strayContainer))
        let (records, problems) = store.loadSandboxes()
        XCTAssertEqual(records, [record])
        XCTAssertEqual(problems, [])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.sandboxDirectory), ["abc.json"])
    }
}
