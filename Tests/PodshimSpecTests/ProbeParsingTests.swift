import XCTest
@testable import PodshimSpec

final class ProbeParsingTests: XCTestCase {
    private func probes(_ fields: String) -> [ProbeKind: Probe]? {
        parseManifest(manifest(container: "ports: [{ name: http, containerPort: 8080 }], \(fields)"))?.containers.first?.probes
    }

    func testDefaults() {
        let probe = probes("livenessProbe: { exec: { command: [cat, /tmp/ok] } }")?[.liveness]
        XCTAssertEqual(probe, Probe(handler: .exec(command: ["cat", "/tmp/ok"]), initialDelaySeconds: 0, periodSeconds: 10,
                                    timeoutSeconds: 1, successThreshold: 1, failureThreshold: 3))
    }

    func testAllThreeKindsAndHandlers() {
        let parsed = probes("""
            startupProbe: { tcpSocket: { port: 8080 }, failureThreshold: 30, periodSeconds: 1 },
            readinessProbe: { httpGet: { path: /healthz, port: http }, successThreshold: 2 },
            livenessProbe: { exec: { command: ["true"] }, initialDelaySeconds: 5, timeoutSeconds: 2 }
            """)
        XCTAssertEqual(parsed?[.startup]?.handler, .tcpSocket(host: nil, port: .number(8080)))
        XCTAssertEqual(parsed?[.startup]?.failureThreshold, 30)
        XCTAssertEqual(parsed?[.readiness]?.handler, .httpGet(HTTPGetAction(path: "/healthz", port: .name("http"))))
        XCTAssertEqual(parsed?[.readiness]?.successThreshold, 2)
        XCTAssertEqual(parsed?[.liveness]?.initialDelaySeconds, 5)
        XCTAssertEqual(parsed?[.liveness]?.timeoutSeconds, 2)
    }

    func testErrorsNameTheField() {
        assertManifestError(manifest(container: "livenessProbe: {}"),
                            "spec.containers[0].livenessProbe: needs one of exec, httpGet, tcpSocket")
        assertManifestError(manifest(container: "livenessProbe: { exec: { command: [x] }, successThreshold: 2 }"),
                            "spec.containers[0].livenessProbe.successThreshold: must be 1 for liveness probes")
        assertManifestError(manifest(container: "readinessProbe: { exec: { command: [x] }, periodSeconds: 0 }"),
                            "spec.containers[0].readinessProbe.periodSeconds: must be at least 1")
        assertManifestError(manifest(container: "readinessProbe: { tcpSocket: { port: web } }"),
                            "spec.containers[0].readinessProbe.tcpSocket.port: no container port named \"web\"")
        assertManifestError(manifest(container: "readinessProbe: { grpc: { port: 9 } }"),
                            "spec.containers[0].readinessProbe.grpc: grpc probes are not supported (exec, httpGet, tcpSocket)")
        assertManifestError(manifest(container: "readinessProbe: { exec: { command: [x] }, terminationGracePeriodSeconds: 5 }"),
                            "spec.containers[0].readinessProbe.terminationGracePeriodSeconds: not allowed for readiness probes")
        XCTAssertEqual(probes("livenessProbe: { exec: { command: [x] }, terminationGracePeriodSeconds: 5 }")?[.liveness]?
            .terminationGracePeriodSeconds, 5)
        assertManifestError(manifest(container: "startupProbe: { exec: { command: [x] }, bogus: 1 }"),
                            "spec.containers[0].startupProbe.bogus: unknown field")
    }
}
