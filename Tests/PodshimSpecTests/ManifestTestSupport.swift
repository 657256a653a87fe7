import XCTest
@testable import PodshimSpec

/// Asserts that parsing `yaml` fails with exactly `expected` (`path: message`).
func assertManifestError(
    _ yaml: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line
) {
    do {
        let pod = try ManifestParser.parse(yaml: yaml)
        XCTFail("expected \"\(expected)\", parsed \(pod)", file: file, line: line)
    } catch {
        XCTAssertEqual(error.description, expected, file: file, line: line)
    }
}

/// Parses `yaml`, failing the test (and returning nil) when it is rejected.
func parseManifest(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> PodSpec? {
    do {
        return try ManifestParser.parse(yaml: yaml)
    } catch {
        XCTFail("unexpected error: \(error)", file: file, line: line)
        return nil
    }
}

/// A valid manifest with `spec` and `metadata` given as YAML flow mappings, so each test writes
/// only the part it is about.
func manifest(
    metadata: String = "{ name: web }",
    spec: String = "{ containers: [{ name: app, image: busybox }] }"
) -> String {
    """
    apiVersion: v1
    kind: Pod
    metadata: \(metadata)
    spec: \(spec)
    """
}

/// A valid manifest with one container whose extra fields are `fields` (flow-mapping entries),
/// and `volumes` as the pod's volume list.
func manifest(container fields: String, volumes: String = "[]") -> String {
    manifest(spec: "{ volumes: \(volumes), containers: [{ name: app, image: busybox, \(fields) }] }")
}
