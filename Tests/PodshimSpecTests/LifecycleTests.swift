import XCTest
@testable import PodshimSpec

/// `lifecycle.preStop` and `lifecycle.stopSignal`.
final class LifecycleTests: XCTestCase {
    private func lifecycle(_ fields: String, ports: String = "[]") -> Lifecycle? {
        parseManifest(manifest(container: "ports: \(ports), lifecycle: \(fields)"))?.containers.first?.lifecycle
    }

    func testExecPreStopAndStopSignal() {
        XCTAssertEqual(lifecycle("{ preStop: { exec: { command: [sh, -c, 'sleep 1'] } }, stopSignal: SIGUSR1 }"),
                       Lifecycle(preStop: .exec(command: ["sh", "-c", "sleep 1"]), stopSignal: "SIGUSR1"))
    }

    func testNoLifecycleMeansSIGTERMAndNoHook() {
        XCTAssertEqual(parseManifest(manifest())?.containers.first?.lifecycle, Lifecycle())
    }

    func testHTTPGetWithNamedPortAndHeaders() {
        let parsed = lifecycle("{ preStop: { httpGet: { path: /quit, port: admin, httpHeaders: [{ name: X-Why, value: stop }] } } }",
                               ports: "[{ name: admin, containerPort: 9000 }]")
        guard case .httpGet(let action)? = parsed?.preStop else { return XCTFail("\(String(describing: parsed))") }
        XCTAssertEqual(action.path, "/quit")
        XCTAssertEqual(action.port, .name("admin"))
        XCTAssertEqual(action.port.resolve(in: [ContainerPort(name: "admin", containerPort: 9000)]), 9000)
        XCTAssertEqual(action.headers.map(\.name), ["X-Why"])
        XCTAssertNil(action.host)
    }

    func testSleepHook() {
        XCTAssertEqual(lifecycle("{ preStop: { sleep: { seconds: 3 } } }")?.preStop, .sleep(seconds: 3))
    }

    func testErrorsNameTheField() {
        assertManifestError(manifest(container: "lifecycle: { preStop: { exec: { command: [] } } }"),
                            "spec.containers[0].lifecycle.preStop.exec.command: required")
        assertManifestError(manifest(container: "lifecycle: { preStop: {} }"),
                            "spec.containers[0].lifecycle.preStop: needs one of exec, httpGet, sleep")
        assertManifestError(manifest(container: "lifecycle: { preStop: { exec: { command: [x] }, sleep: { seconds: 1 } } }"),
                            "spec.containers[0].lifecycle.preStop: must have only one of exec, httpGet, sleep")
        assertManifestError(manifest(container: "lifecycle: { preStop: { httpGet: { port: nope } } }"),
                            "spec.containers[0].lifecycle.preStop.httpGet.port: no container port named \"nope\"")
        assertManifestError(manifest(container: "lifecycle: { preStop: { httpGet: { port: 70000 } } }"),
                            "spec.containers[0].lifecycle.preStop.httpGet.port: must be between 1 and 65535")
        assertManifestError(manifest(container: "lifecycle: { preStop: { httpGet: { port: 80, scheme: HTTPS } } }"),
                            "spec.containers[0].lifecycle.preStop.httpGet.scheme: HTTPS is not supported (HTTP)")
        assertManifestError(manifest(container: "lifecycle: { postStart: { exec: { command: [x] } } }"),
                            "spec.containers[0].lifecycle.postStart: not supported (preStop is)")
        assertManifestError(manifest(container: "lifecycle: { stopSignal: SIGNOPE }"),
                            "spec.containers[0].lifecycle.stopSignal: must be one of " + ManifestParser.stopSignals.joined(separator: ", "))
        assertManifestError(manifest(container: "lifecycle: { preStop: { sleep: { seconds: -1 } } }"),
                            "spec.containers[0].lifecycle.preStop.sleep.seconds: required, not negative")
    }
}
