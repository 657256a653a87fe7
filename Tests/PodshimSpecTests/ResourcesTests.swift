import XCTest
@testable import PodshimSpec

/// A container's `resources`, and the quantities elsewhere in a manifest.
final class ResourcesTests: XCTestCase {
    private func resources(_ yaml: String, file: StaticString = #filePath, line: UInt = #line) -> ResourceRequirements? {
        parseManifest(manifest(container: "resources: \(yaml)"), file: file, line: line)?.containers.first?.resources
    }

    private func assertResourcesError(
        _ yaml: String, _ expected: String, file: StaticString = #filePath, line: UInt = #line
    ) {
        assertManifestError(manifest(container: "resources: \(yaml)"), expected, file: file, line: line)
    }

    func testLimitsAndRequests() {
        XCTAssertEqual(
            resources("{ limits: { cpu: 2, memory: 1Gi }, requests: { cpu: 0.5, memory: 129e6 } }"),
            ResourceRequirements(
                cpuLimitMillis: 2000, memoryLimitBytes: 1_073_741_824,
                cpuRequestMillis: 500, memoryRequestBytes: 129_000_000
            )
        )
        XCTAssertEqual(
            resources(#"{ limits: { cpu: "250m", memory: "129M" }, requests: { cpu: '100m', memory: "123Mi" } }"#),
            ResourceRequirements(
                cpuLimitMillis: 250, memoryLimitBytes: 129_000_000,
                cpuRequestMillis: 100, memoryRequestBytes: 128_974_848
            )
        )
        XCTAssertEqual(
            resources("{ limits: { cpu: 1.5, memory: 1.5Mi }, requests: { cpu: 0.0005, memory: 100m } }"),
            ResourceRequirements(
                cpuLimitMillis: 1500, memoryLimitBytes: 1_572_864, cpuRequestMillis: 1, memoryRequestBytes: 1
            )
        )
    }

    func testBlockStyleManifest() throws {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata: { name: web }
            spec:
              containers:
              - name: app
                image: busybox
                resources:
                  limits:
                    cpu: 500m
                    memory: 128974848
                    ephemeral-storage: 1Gi
                  requests:
                    memory: 64Mi
              - name: sidecar
                image: busybox
            """
        let pod = try XCTUnwrap(parseManifest(yaml))
        XCTAssertEqual(pod.containers[0].resources, ResourceRequirements(
            cpuLimitMillis: 500, memoryLimitBytes: 128_974_848, cpuRequestMillis: 500, memoryRequestBytes: 67_108_864
        ))
        XCTAssertEqual(pod.containers[1].resources, ResourceRequirements())
        XCTAssertTrue(pod.containers[1].resources.isEmpty)
    }

    func testRequestDefaultsToLimit() {
        XCTAssertEqual(
            resources("{ limits: { cpu: 2, memory: 1Gi } }"),
            ResourceRequirements(
                cpuLimitMillis: 2000, memoryLimitBytes: 1_073_741_824,
                cpuRequestMillis: 2000, memoryRequestBytes: 1_073_741_824
            )
        )
        XCTAssertEqual(
            resources("{ limits: { cpu: 2, memory: 1Gi }, requests: { memory: 1G } }"),
            ResourceRequirements(
                cpuLimitMillis: 2000, memoryLimitBytes: 1_073_741_824,
                cpuRequestMillis: 2000, memoryRequestBytes: 1_000_000_000
            )
        )
        XCTAssertEqual(
            resources("{ limits: { memory: 1Gi }, requests: { cpu: 100m } }"),
            ResourceRequirements(
                memoryLimitBytes: 1_073_741_824, cpuRequestMillis: 100, memoryRequestBytes: 1_073_741_824
            )
        )
    }

    func testRequestsWithoutLimits() {
        XCTAssertEqual(
            resources("{ requests: { cpu: 4, memory: 1Ti } }"),
            ResourceRequirements(cpuRequestMillis: 4000, memoryRequestBytes: 1 << 40)
        )
    }

    func testRequestEqualToLimit() {
        XCTAssertEqual(
            resources("{ limits: { cpu: 1, memory: 1Gi }, requests: { cpu: 1000m, memory: 1024Mi } }"),
            ResourceRequirements(
                cpuLimitMillis: 1000, memoryLimitBytes: 1_073_741_824,
                cpuRequestMillis: 1000, memoryRequestBytes: 1_073_741_824
            )
        )
    }

    func testZeroLimitMeansNoLimit() {
        XCTAssertEqual(
            resources("{ limits: { cpu: 0 } }"),
            ResourceRequirements(cpuLimitMillis: nil, cpuRequestMillis: 0)
        )
        XCTAssertEqual(
            resources("{ limits: { cpu: 0, memory: 0 }, requests: { cpu: 0, memory: 0Mi } }"),
            ResourceRequirements(cpuRequestMillis: 0, memoryRequestBytes: 0)
        )
        XCTAssertEqual(resources("{ requests: { cpu: 0 } }"), ResourceRequirements(cpuRequestMillis: 0))
        XCTAssertEqual(
            resources("{ limits: { cpu: '0', memory: 1Gi } }"),
            ResourceRequirements(memoryLimitBytes: 1_073_741_824, cpuRequestMillis: 0, memoryRequestBytes: 1_073_741_824)
        )
        // A zero limit is still a limit for the request rule.
        assertResourcesError(
            "{ limits: { cpu: 0 }, requests: { cpu: 1m } }",
            "spec.containers[0].resources.requests.cpu: must be less than or equal to the cpu limit"
        )
    }

    func testAbsentAndEmpty() {
        for yaml in ["{}", "~", "{ limits: {}, requests: {} }", "{ limits: ~, requests: }", "{ limits: { cpu: ~, memory: null } }"] {
            XCTAssertEqual(resources(yaml), ResourceRequirements(), yaml)
        }
        XCTAssertEqual(parseManifest(manifest())?.containers.first?.resources, ResourceRequirements())
    }

    func testEphemeralStorageIsCheckedAndIgnored() {
        XCTAssertEqual(
            resources("{ limits: { ephemeral-storage: 1Gi }, requests: { ephemeral-storage: 2Gi, cpu: 1 } }"),
            ResourceRequirements(cpuRequestMillis: 1000)
        )
        assertResourcesError(
            "{ limits: { ephemeral-storage: 1GB } }",
            #"spec.containers[0].resources.limits.ephemeral-storage: "1GB" is not a quantity"#
        )
        assertResourcesError(
            "{ requests: { ephemeral-storage: -1Gi } }",
            "spec.containers[0].resources.requests.ephemeral-storage: must not be negative"
        )
        assertResourcesError(
            "{ requests: { ephemeral-storage: 8Ei } }",
            "spec.containers[0].resources.requests.ephemeral-storage: quantity too large"
        )
    }

    // MARK: - Errors

    func testMalformedQuantity() {
        assertResourcesError(
            "{ limits: { memory: 12XB } }",
            #"spec.containers[0].resources.limits.memory: "12XB" is not a quantity"#
        )
        assertResourcesError(
            #"{ limits: { memory: "12XB" } }"#,
            #"spec.containers[0].resources.limits.memory: "12XB" is not a quantity"#
        )
        assertResourcesError(
            "{ requests: { cpu: 1.2.3 } }",
            #"spec.containers[0].resources.requests.cpu: "1.2.3" is not a quantity"#
        )
        assertResourcesError(
            "{ limits: { cpu: '1 Gi' } }",
            #"spec.containers[0].resources.limits.cpu: "1 Gi" is not a quantity"#
        )
        assertResourcesError(
            "{ limits: { cpu: '' } }",
            #"spec.containers[0].resources.limits.cpu: "" is not a quantity"#
        )
        assertResourcesError(
            "{ limits: { cpu: 0x10 } }",
            #"spec.containers[0].resources.limits.cpu: "0x10" is not a quantity"#
        )
        assertResourcesError(
            "{ limits: { cpu: true } }",
            #"spec.containers[0].resources.limits.cpu: "true" is not a quantity"#
        )
        assertResourcesError(
            "{ limits: { cpu: [1] } }",
            "spec.containers[0].resources.limits.cpu: must be a quantity"
        )
        assertResourcesError(
            "{ limits: { memory: { value: 1 } } }",
            "spec.containers[0].resources.limits.memory: must be a quantity"
        )
    }

    func testNegativeQuantity() {
        assertResourcesError(
            "{ limits: { cpu: -1 } }",
            "spec.containers[0].resources.limits.cpu: must not be negative"
        )
        assertResourcesError(
            "{ requests: { memory: -64Mi } }",
            "spec.containers[0].resources.requests.memory: must not be negative"
        )
        XCTAssertEqual(resources("{ limits: { cpu: -0 } }"), ResourceRequirements(cpuRequestMillis: 0))
    }

    func testQuantityTooLarge() {
        assertResourcesError(
            "{ limits: { memory: 8Ei } }",
            "spec.containers[0].resources.limits.memory: quantity too large"
        )
        assertResourcesError(
            "{ requests: { memory: 1e19 } }",
            "spec.containers[0].resources.requests.memory: quantity too large"
        )
        // Fits in bytes, not in millicores.
        assertResourcesError(
            "{ limits: { cpu: 9223372036854776 } }",
            "spec.containers[0].resources.limits.cpu: quantity too large"
        )
        XCTAssertEqual(
            resources("{ limits: { cpu: 9223372036854775.807, memory: 9223372036854775807 } }"),
            ResourceRequirements(
                cpuLimitMillis: Int64.max, memoryLimitBytes: Int64.max,
                cpuRequestMillis: Int64.max, memoryRequestBytes: Int64.max
            )
        )
    }

    func testRequestGreaterThanLimit() {
        assertResourcesError(
            "{ limits: { cpu: 500m }, requests: { cpu: 1 } }",
            "spec.containers[0].resources.requests.cpu: must be less than or equal to the cpu limit"
        )
        assertResourcesError(
            "{ limits: { memory: 1G }, requests: { memory: 1Gi } }",
            "spec.containers[0].resources.requests.memory: must be less than or equal to the memory limit"
        )
        // Checked on the exact quantities: both round up to 1 millicore.
        assertResourcesError(
            "{ limits: { cpu: 0.5m }, requests: { cpu: 0.7m } }",
            "spec.containers[0].resources.requests.cpu: must be less than or equal to the cpu limit"
        )
        // CPU is checked before memory.
        assertResourcesError(
            "{ limits: { cpu: 1, memory: 1Mi }, requests: { cpu: 2, memory: 2Mi } }",
            "spec.containers[0].resources.requests.cpu: must be less than or equal to the cpu limit"
        )
        assertManifestError(
            manifest(spec: "{ containers: [{ name: a, image: b }, { name: c, image: b, resources: { limits: { memory: 1Mi }, requests: { memory: 2Mi } } }] }"),
            "spec.containers[1].resources.requests.memory: must be less than or equal to the memory limit"
        )
    }

    func testUnknownFieldsAndResources() {
        assertResourcesError("{ claims: [] }", "spec.containers[0].resources.claims: unknown field")
        assertResourcesError("{ limit: { cpu: 1 } }", "spec.containers[0].resources.limit: unknown field")
        assertResourcesError(
            "{ limits: { cpu: 1, gpu: 1 } }",
            "spec.containers[0].resources.limits.gpu: unsupported resource (cpu, memory, ephemeral-storage)"
        )
        assertResourcesError(
            "{ requests: { nvidia.com/gpu: 1 } }",
            #"spec.containers[0].resources.requests["nvidia.com/gpu"]: unsupported resource (cpu, memory, ephemeral-storage)"#
        )
        assertResourcesError(
            "{ limits: { CPU: 1 } }",
            "spec.containers[0].resources.limits.CPU: unsupported resource (cpu, memory, ephemeral-storage)"
        )
        // An unsupported resource is reported before any bad quantity.
        assertResourcesError(
            "{ limits: { cpu: lots, hugepages-2Mi: 1Gi } }",
            "spec.containers[0].resources.limits.hugepages-2Mi: unsupported resource (cpu, memory, ephemeral-storage)"
        )
    }

    func testResourcesThatAreNotMappings() {
        assertResourcesError("[]", "spec.containers[0].resources: must be a mapping")
        assertResourcesError("{ limits: [] }", "spec.containers[0].resources.limits: must be a mapping")
        assertResourcesError("{ requests: 1 }", "spec.containers[0].resources.requests: must be a mapping")
    }

    // MARK: - emptyDir.sizeLimit

    func testSizeLimitIsKeptAsWritten() {
        let pod = parseManifest(manifest(container: "", volumes: "[{ name: v, emptyDir: { sizeLimit: 1.5Gi } }, { name: w, emptyDir: { sizeLimit: 129e6 } }]"))
        XCTAssertEqual(pod?.volumes, [
            Volume(name: "v", source: .emptyDir(medium: .disk, sizeLimit: "1.5Gi")),
            Volume(name: "w", source: .emptyDir(medium: .disk, sizeLimit: "129e6")),
        ])
    }

    func testBadSizeLimit() {
        assertManifestError(
            manifest(container: "", volumes: "[{ name: v, emptyDir: { sizeLimit: 12XB } }]"),
            "spec.volumes[0].emptyDir.sizeLimit: must be a quantity such as 64Mi or 1G"
        )
        assertManifestError(
            manifest(container: "", volumes: "[{ name: v, emptyDir: { sizeLimit: -1Gi } }]"),
            "spec.volumes[0].emptyDir.sizeLimit: must not be negative"
        )
        assertManifestError(
            manifest(container: "", volumes: "[{ name: v, emptyDir: { sizeLimit: 16Ei } }]"),
            "spec.volumes[0].emptyDir.sizeLimit: quantity too large"
        )
    }
}
