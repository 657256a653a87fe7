import Foundation
import XCTest

/// What must show, 5: a bad manifest gives one line naming the field, exit code 2, and starts nothing.
final class BadManifestTests: XCTestCase {
    var harness: PodshimHarness!

    override func setUpWithError() throws { harness = try PodshimHarness.make() }
    override func tearDown() { harness?.tearDown() }

    func testBadManifestsAreRejectedBeforeAnythingStarts() throws {
        let header = "apiVersion: v1\nkind: Pod\nmetadata: { name: bad }\nspec:\n  restartPolicy: Never\n"
        let cases: [(String, String)] = [
            (header + "  containers: [{ name: a, image: busybox, command: [\"true\"], colour: red }]",
             "spec.containers[0].colour: unknown field"),
            (header + "  containers: [{ name: a, image: busybox }, { name: b, image: busybox, command: \"true\" }]",
             "spec.containers[1].command: must be a list of strings"),
            // Never: no registry is asked (the test sends no traffic off the host).
            (header + "  containers: [{ name: a, image: no-such-image, imagePullPolicy: Never, command: [\"true\"] }]",
             "spec.containers[0].image: image \"no-such-image\" is not in the local store"),
            (header + "  containers: [{ name: a, image: busybox, command: [\"true\"] }, { name: a, image: busybox, command: [\"true\"] }]",
             "spec.containers[1].name: duplicate container name \"a\""),
            (header + "  containers: [{ name: a, image: busybox, command: [\"true\"], volumeMounts: [{ name: v, mountPath: /v }] }]",
             "spec.containers[0].volumeMounts[0].name: no volume named \"v\" in spec.volumes"),
            (header + "  containers: [{ name: a, command: [\"true\"] }]",
             "spec.containers[0].image: required"),
        ]
        for (manifest, expected) in cases {
            let (status, run) = try harness.run(manifest)
            XCTAssertEqual(status, 2, expected)
            let lines = run.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "one line: \(run.stderr)")
            XCTAssertTrue(run.stderr.contains(expected), "expected \(expected) in: \(run.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: harness.stateDir), "nothing may be created: \(expected)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: harness.rootDir), "nothing may be created: \(expected)")
        }
    }
}
