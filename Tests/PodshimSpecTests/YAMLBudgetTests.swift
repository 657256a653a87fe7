import XCTest
@testable import PodshimSpec

/// Hostile YAML fails fast: an alias bomb (aliases of aliases, one used as a mapping key, which the
/// composer hashes) is refused before it is composed; deep nesting and huge input too. Real
/// manifests, aliases included, still parse.
final class YAMLBudgetTests: XCTestCase {
    private func bomb(levels: Int) -> String {
        var lines = ["apiVersion: v1", "kind: Pod", "metadata: {name: bomb}", "spec:", "  containers:",
                     "  - name: c", "    image: busybox", "    command: [sh]", "    env:",
                     "    - name: &a1 [x,x,x,x,x,x,x,x,x,x]", "      value: x"]
        for level in 2...levels {
            let previous = "*a\(level - 1)"
            lines += ["    - name: &a\(level) [" + Array(repeating: previous, count: 10).joined(separator: ",") + "]",
                      "      value: x"]
        }
        lines.append("    - {? *a\(levels) : x}")
        return lines.joined(separator: "\n") + "\n"
    }

    func testAnAliasBombIsRefusedBeforeItIsComposed() {
        let yaml = bomb(levels: 9) // 10^9 nodes expanded, under 1 KB of text
        XCTAssertLessThan(yaml.utf8.count, 1024)
        XCTAssertThrowsError(try ManifestParser.parse(yaml: yaml)) { error in
            XCTAssertEqual((error as? ManifestError)?.path, "manifest")
            XCTAssertTrue("\(error)".contains("aliases are expanded"), "\(error)")
        }
    }

    func testDeepNestingAndHugeInputAreRefused() {
        let deep = "a: " + String(repeating: "[", count: 200) + String(repeating: "]", count: 200) + "\n"
        XCTAssertThrowsError(try ManifestParser.parse(yaml: deep)) { error in
            XCTAssertTrue("\(error)".contains("nested deeper than"), "\(error)")
        }
        let huge = "# " + String(repeating: "x", count: YAMLBudget.maximumBytes) + "\n"
        XCTAssertThrowsError(try ManifestParser.parse(yaml: huge)) { error in
            XCTAssertTrue("\(error)".contains("larger than"), "\(error)")
        }
    }

    func testAManifestWithAFewAliasesStillParses() throws {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata: {name: ok}
            spec:
              containers:
              - name: a
                image: busybox
                command: &cmd [sleep, "10"]
              - name: b
                image: busybox
                command: *cmd
            """
        let pod = try ManifestParser.parse(yaml: yaml)
        XCTAssertEqual(pod.containers.map(\.command), [["sleep", "10"], ["sleep", "10"]])
    }
}
