import XCTest
@testable import PodshimSpec

/// `ManifestParser.parseAll`: a YAML stream of several pods, the paths of its errors, the names
/// and uids that must be unique, and the budget that bounds the stream as a whole.
final class MultiDocumentTests: XCTestCase {
    /// Asserts that `parseAll` rejects `yaml` with exactly `expected` (`path: message`).
    private func assertStreamError(_ yaml: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let pods = try ManifestParser.parseAll(yaml: yaml)
            XCTFail("expected \"\(expected)\", parsed \(pods.map(\.name))", file: file, line: line)
        } catch {
            XCTAssertEqual(error.description, expected, file: file, line: line)
        }
    }

    private func pod(_ name: String, image: String = "busybox", uid: String? = nil) -> String {
        manifest(metadata: uid.map { "{ name: \(name), uid: \($0) }" } ?? "{ name: \(name) }",
                 spec: "{ containers: [{ name: app, image: \(image) }] }")
    }

    // MARK: - Documents

    func testTwoPodsInOrder() throws {
        let pods = try ManifestParser.parseAll(yaml: pod("web") + "\n---\n" + pod("db", image: "postgres"))
        XCTAssertEqual(pods, [
            PodSpec(name: "web", containers: [ContainerSpec(name: "app", image: "busybox")]),
            PodSpec(name: "db", containers: [ContainerSpec(name: "app", image: "postgres")]),
        ])
    }

    func testEmptyDocumentsAreSkipped() throws {
        let yaml = "---\n" + pod("a") + "\n---\n---\n# only a comment\n---\n~\n---\n" + pod("b") + "\n---\n...\n"
        XCTAssertEqual(try ManifestParser.parseAll(yaml: yaml).map(\.name), ["a", "b"])
        // Positions in errors count the empty documents (the one `...` ends too): the bad one is
        // the stream's seventh.
        assertStreamError(yaml + "---\n" + pod("c", image: "\"\""),
                          "documents[6].spec.containers[0].image: required")
    }

    func testOneDocumentIsParsedAsParseDoes() throws {
        XCTAssertEqual(try ManifestParser.parseAll(yaml: "---\n" + pod("web") + "\n---\n").map(\.name), ["web"])
        // No `documents[0].` prefix when there is only one pod, with or without empty documents.
        assertStreamError(pod("web", image: "\"\""), "spec.containers[0].image: required")
        assertStreamError("---\n---\n" + pod("web", image: "\"\""), "spec.containers[0].image: required")
        assertStreamError("- a\n", "manifest: must be a mapping (a Pod manifest)")
        assertStreamError("", "manifest: empty")
        assertStreamError("---\n---\n~\n", "manifest: empty")
    }

    func testErrorPathsNameTheDocument() {
        assertStreamError(pod("web") + "\n---\n" + pod("db", image: "\"\""),
                          "documents[1].spec.containers[0].image: required")
        assertStreamError(pod("web", image: "\"\"") + "\n---\n" + pod("db"),
                          "documents[0].spec.containers[0].image: required")
        assertStreamError(pod("web") + "\n---\n- a\n", "documents[1]: must be a mapping (a Pod manifest)")
        assertStreamError(pod("web") + "\n---\n? [a]\n: b\n", "documents[1]: keys must be strings")
        assertStreamError(pod("web") + "\n---\n" + pod("db") + "\n\"a.b\": 1\n", #"documents[1]["a.b"]: unknown field"#)
        // Lines count in the whole stream: line 9 is the second document's first `spec`.
        assertStreamError(pod("web") + "\n---\n" + pod("db") + "\nspec: {}\n",
                          "manifest: invalid YAML at line 9, column 1: duplicate key \"spec\"")
    }

    func testNamesAndUIDsAreUniqueInTheStream() {
        assertStreamError(pod("web") + "\n---\n" + pod("db") + "\n---\n" + pod("web"),
                          #"documents[2].metadata.name: "web" is already the name of documents[0]"#)
        // Namespaces do not make names unique in one file.
        assertStreamError(pod("web") + "\n---\n" + manifest(metadata: "{ name: web, namespace: other }"),
                          #"documents[1].metadata.name: "web" is already the name of documents[0]"#)
        assertStreamError(pod("web", uid: "u-1") + "\n---\n" + pod("db", uid: "u-1"),
                          #"documents[1].metadata.uid: "u-1" is already the uid of documents[0]"#)
        XCTAssertEqual(try ManifestParser.parseAll(yaml: pod("web", uid: "u-1") + "\n---\n" + pod("db", uid: "u-2"))
            .map { $0.uid }, ["u-1", "u-2"])
    }

    func testParseAllContentsOfAFile() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("pods-\(UUID()).yaml").path
        try (pod("web") + "\n---\n" + pod("db")).write(toFile: path, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        XCTAssertEqual(try ManifestParser.parseAll(contentsOf: path).map(\.name), ["web", "db"])
        XCTAssertThrowsError(try ManifestParser.parseAll(contentsOf: path + ".missing")) { error in
            XCTAssertEqual("\(error)", "manifest: cannot read \(path).missing: No such file or directory")
        }
    }

    // MARK: - The budget holds for the stream

    /// An alias bomb whose anchors are defined in the first document and used in the second: Yams'
    /// composer resolves aliases across documents, so the budget must count them there too.
    func testAnAliasBombSplitAcrossDocumentsIsRefused() {
        var first = ["a1: &a1 [x,x,x,x,x,x,x,x,x,x]"]
        for level in 2...4 {
            first.append("a\(level): &a\(level) [" + Array(repeating: "*a\(level - 1)", count: 10).joined(separator: ",") + "]")
        }
        // Four levels: about 11,000 nodes, within the budget; the second document goes on to 10^6
        // (enough to fail the budget, little enough that a budget blind to it fails the test, not hangs).
        let second = [
            "x5: &a5 [" + Array(repeating: "*a4", count: 10).joined(separator: ",") + "]",
            "x6: &a6 [" + Array(repeating: "*a5", count: 10).joined(separator: ",") + "]",
            "y: {? *a6 : x}",
        ]
        let yaml = first.joined(separator: "\n") + "\n---\n" + second.joined(separator: "\n") + "\n"
        XCTAssertLessThan(yaml.utf8.count, 1024)

        XCTAssertThrowsError(try ManifestParser.parseAll(yaml: first.joined(separator: "\n"))) { error in
            XCTAssertEqual("\(error)", "a1: unknown field") // the first document alone is within the budget
        }

        let clock = ContinuousClock()
        let start = clock.now
        let parsers: [() throws -> Void] = [
            { _ = try ManifestParser.parseAll(yaml: yaml) },
            { _ = try ManifestParser.parse(yaml: yaml) },
        ]
        for parse in parsers {
            XCTAssertThrowsError(try parse()) { error in
                XCTAssertEqual("\(error)", "manifest: more than 100000 nodes once its aliases are expanded")
            }
        }
        XCTAssertLessThan(clock.now - start, .seconds(1))
    }

    /// Each document is within the budget; together they are not.
    func testTheNodeBudgetCountsEveryDocument() {
        let half = "a: [" + Array(repeating: "x", count: 60_000).joined(separator: ",") + "]\n"
        XCTAssertThrowsError(try ManifestParser.parseAll(yaml: half)) { error in
            XCTAssertEqual("\(error)", "a: unknown field") // past the budget, to the parser
        }
        XCTAssertThrowsError(try ManifestParser.parseAll(yaml: half + "---\n" + half)) { error in
            XCTAssertEqual("\(error)", "manifest: more than 100000 nodes once its aliases are expanded")
        }
    }

    func testTheSizeBudgetCountsEveryDocument() {
        let half = "# " + String(repeating: "x", count: YAMLBudget.maximumBytes / 2) + "\n" + pod("web")
        XCTAssertEqual(try ManifestParser.parseAll(yaml: half).map(\.name), ["web"])
        XCTAssertThrowsError(try ManifestParser.parseAll(yaml: half + "\n---\n" + half)) { error in
            XCTAssertEqual("\(error)", "manifest: larger than \(YAMLBudget.maximumBytes) bytes")
        }
    }
}
