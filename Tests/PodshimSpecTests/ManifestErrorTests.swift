import XCTest
@testable import PodshimSpec

/// Manifests that are rejected, each with the exact `path: message` the user sees.
final class ManifestErrorTests: XCTestCase {
    // MARK: - The document

    func testEmptyDocument() {
        assertManifestError("", "manifest: empty")
        assertManifestError("# nothing but a comment\n", "manifest: empty")
        assertManifestError("~\n", "manifest: empty")
    }

    func testDocumentThatIsNotAMapping() {
        assertManifestError("- apiVersion: v1\n", "manifest: must be a mapping (a Pod manifest)")
        assertManifestError("just words\n", "manifest: must be a mapping (a Pod manifest)")
    }

    func testDocumentWithAComplexKey() {
        assertManifestError("? [a]\n: b\n", "manifest: keys must be strings")
    }

    func testYAMLSyntaxError() {
        assertManifestError(
            "apiVersion: v1\nkind: [Pod\n",
            "manifest: invalid YAML at line 3, column 1: did not find expected ',' or ']' (while parsing a flow sequence at line 2, column 7)"
        )
        assertManifestError(
            "apiVersion: v1\n  kind: Pod\n",
            "manifest: invalid YAML at line 2, column 7: mapping values are not allowed in this context"
        )
    }

    func testDuplicateKey() {
        assertManifestError(
            "apiVersion: v1\nkind: Pod\napiVersion: v1\n",
            #"manifest: invalid YAML at line 1, column 1: duplicate key "apiVersion""#
        )
    }

    func testSecondDocument() {
        assertManifestError(
            manifest() + "\n---\n" + manifest(),
            "manifest: several documents (the second starts at line 6): use ManifestParser.parseAll to read more than one pod"
        )
        // Empty documents around the one pod are not a second document.
        XCTAssertEqual(parseManifest("---\n" + manifest() + "\n---\n# end\n")?.name, "web")
        // A syntax error in a later document is still a syntax error.
        assertManifestError(
            manifest() + "\n---\nkind: [Pod\n",
            "manifest: invalid YAML at line 7, column 1: did not find expected ',' or ']' (while parsing a flow sequence at line 6, column 7)"
        )
    }

    // MARK: - Top level

    func testUnknownTopLevelField() {
        assertManifestError(manifest() + "\nstatus: {}", "status: unknown field")
    }

    func testAPIVersionAndKind() {
        assertManifestError("kind: Pod\nmetadata: { name: web }\n", "apiVersion: required")
        assertManifestError("apiVersion: apps/v1\nkind: Pod\n", "apiVersion: must be v1")
        assertManifestError("apiVersion: v1\nmetadata: { name: web }\n", "kind: required")
        assertManifestError("apiVersion: v1\nkind: Deployment\n", "kind: must be Pod")
        assertManifestError("apiVersion: [v1]\nkind: Pod\n", "apiVersion: must be a string")
    }

    // MARK: - Metadata

    func testMissingMetadataOrName() {
        assertManifestError("apiVersion: v1\nkind: Pod\nspec: {}\n", "metadata.name: required")
        assertManifestError(manifest(metadata: "{ namespace: prod }"), "metadata.name: required")
        assertManifestError(manifest(metadata: "{ name: '' }"), "metadata.name: required")
        assertManifestError(manifest(metadata: "[web]"), "metadata: must be a mapping")
    }

    func testUnknownMetadataField() {
        assertManifestError(manifest(metadata: "{ name: web, generateName: web- }"), "metadata.generateName: unknown field")
    }

    func testBadPodName() {
        let rule = "metadata.name: " + NameRules.subdomainRule
        assertManifestError(manifest(metadata: "{ name: Web }"), rule)
        assertManifestError(manifest(metadata: "{ name: web_1 }"), rule)
        assertManifestError(manifest(metadata: "{ name: -web }"), rule)
        assertManifestError(manifest(metadata: "{ name: web. }"), rule)
        assertManifestError(manifest(metadata: "{ name: a..b }"), rule)
        assertManifestError(manifest(metadata: "{ name: \(String(repeating: "a", count: 254)) }"), rule)
        XCTAssertEqual(
            NameRules.subdomainRule,
            "must be a DNS-1123 subdomain (at most 253 lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit)"
        )
    }

    func testBadNamespace() {
        assertManifestError(
            manifest(metadata: "{ name: web, namespace: kube.system }"),
            "metadata.namespace: must be a DNS-1123 label (at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"
        )
    }

    func testBadUID() {
        let message = "metadata.uid: must be 1 to 64 letters, digits, '-' and '_'"
        assertManifestError(manifest(metadata: "{ name: web, uid: ../etc }"), message)
        assertManifestError(manifest(metadata: "{ name: web, uid: \(String(repeating: "u", count: 65)) }"), message)
    }

    func testBadLabelsAndAnnotations() {
        assertManifestError(manifest(metadata: "{ name: web, labels: [app] }"), "metadata.labels: must be a mapping")
        assertManifestError(
            manifest(metadata: "{ name: web, labels: { app: [web] } }"), "metadata.labels.app: must be a string"
        )
        assertManifestError(
            manifest(metadata: "{ name: web, annotations: { example.com/note: ~ } }"),
            #"metadata.annotations["example.com/note"]: must be a string"#
        )
    }

    // MARK: - Spec

    func testUnknownSpecField() {
        assertManifestError(
            manifest(spec: "{ nodeName: n1, containers: [{ name: app, image: busybox }] }"),
            "spec.nodeName: unknown field"
        )
    }

    func testContainersRequiredAndNotEmpty() {
        assertManifestError("apiVersion: v1\nkind: Pod\nmetadata: { name: web }\n", "spec.containers: required")
        assertManifestError(manifest(spec: "{ containers: [] }"), "spec.containers: must not be empty")
        assertManifestError(manifest(spec: "{ containers: { name: app } }"), "spec.containers: must be a list")
        assertManifestError(manifest(spec: "{ containers: [app] }"), "spec.containers[0]: must be a mapping")
        assertManifestError(manifest(spec: "[]"), "spec: must be a mapping")
    }

    func testBadHostname() {
        let message = "spec.hostname: " + NameRules.labelRule
        assertManifestError(manifest(spec: "{ hostname: web.local, containers: [{ name: a, image: b }] }"), message)
        assertManifestError(
            manifest(spec: "{ hostname: \(String(repeating: "h", count: 64)), containers: [{ name: a, image: b }] }"),
            message
        )
    }

    func testBadRestartPolicy() {
        assertManifestError(
            manifest(spec: "{ restartPolicy: always, containers: [{ name: a, image: b }] }"),
            "spec.restartPolicy: must be one of Always, OnFailure, Never"
        )
    }

    func testBadGracePeriod() {
        func grace(_ value: String) -> String {
            manifest(spec: "{ terminationGracePeriodSeconds: \(value), containers: [{ name: a, image: b }] }")
        }
        assertManifestError(grace("-1"), "spec.terminationGracePeriodSeconds: must not be negative")
        assertManifestError(grace("\"5\""), "spec.terminationGracePeriodSeconds: must be an integer")
        assertManifestError(grace("5.5"), "spec.terminationGracePeriodSeconds: must be an integer")
        assertManifestError(grace("abc"), "spec.terminationGracePeriodSeconds: must be an integer")
        assertManifestError(grace("99999999999999999999"), "spec.terminationGracePeriodSeconds: must be an integer")
    }

    func testBadShareProcessNamespace() {
        assertManifestError(
            manifest(spec: "{ shareProcessNamespace: yes, containers: [{ name: a, image: b }] }"),
            "spec.shareProcessNamespace: must be a boolean"
        )
        assertManifestError(
            manifest(spec: "{ shareProcessNamespace: 'true', containers: [{ name: a, image: b }] }"),
            "spec.shareProcessNamespace: must be a boolean"
        )
    }

    // MARK: - Volumes

    func testUnknownVolumeField() {
        assertManifestError(
            manifest(container: "", volumes: "[{ name: v, configMap: { name: c } }]"),
            "spec.volumes[0].configMap: unknown field"
        )
        assertManifestError(
            manifest(container: "", volumes: "[{ name: v, emptyDir: { medium: Memory, size: 1Gi } }]"),
            "spec.volumes[0].emptyDir.size: unknown field"
        )
    }

    func testVolumeSourceCount() {
        let message = "spec.volumes[1]: must have exactly one of emptyDir, hostPath"
        assertManifestError(manifest(container: "", volumes: "[{ name: a, emptyDir: {} }, { name: v }]"), message)
        assertManifestError(
            manifest(container: "", volumes: "[{ name: a, emptyDir: {} }, { name: v, emptyDir: {}, hostPath: { path: /x } }]"),
            message
        )
    }

    func testVolumeNames() {
        assertManifestError(
            manifest(container: "", volumes: "[{ name: a, emptyDir: {} }, { name: b, emptyDir: {} }, { name: a, emptyDir: {} }]"),
            #"spec.volumes[2].name: duplicate volume name "a""#
        )
        assertManifestError(manifest(container: "", volumes: "[{ emptyDir: {} }]"), "spec.volumes[0].name: required")
        assertManifestError(
            manifest(container: "", volumes: "[{ name: Data, emptyDir: {} }]"),
            "spec.volumes[0].name: " + NameRules.labelRule
        )
        assertManifestError(manifest(container: "", volumes: "{ name: a }"), "spec.volumes: must be a list")
    }

    func testBadEmptyDir() {
        assertManifestError(
            manifest(container: "", volumes: "[{ name: v, emptyDir: { medium: Disk } }]"),
            #"spec.volumes[0].emptyDir.medium: must be one of "", Memory"#
        )
        assertManifestError(
            manifest(container: "", volumes: "[{ name: v, emptyDir: { sizeLimit: lots } }]"),
            "spec.volumes[0].emptyDir.sizeLimit: must be a quantity such as 64Mi or 1G"
        )
        assertManifestError(
            manifest(container: "", volumes: "[{ name: v, emptyDir: [] }]"),
            "spec.volumes[0].emptyDir: must be a mapping"
        )
    }

    func testBadHostPath() {
        func hostPath(_ fields: String) -> String {
            manifest(container: "", volumes: "[{ name: v, hostPath: \(fields) }]")
        }
        assertManifestError(hostPath("{ path: var/lib }"), "spec.volumes[0].hostPath.path: must be an absolute path")
        assertManifestError(hostPath("{ path: /var/../etc }"), "spec.volumes[0].hostPath.path: must not contain '..'")
        assertManifestError(hostPath("{ type: Directory }"), "spec.volumes[0].hostPath.path: required")
        assertManifestError(hostPath(""), "spec.volumes[0].hostPath.path: required")
        assertManifestError(
            hostPath("{ path: /x, type: Dir }"),
            #"spec.volumes[0].hostPath.type: must be one of "", DirectoryOrCreate, Directory, FileOrCreate, File, Socket, CharDevice, BlockDevice"#
        )
    }

    // MARK: - Containers

    func testUnknownContainerField() {
        assertManifestError(manifest(container: "stdinn: true"), "spec.containers[0].stdinn: unknown field")
    }

    func testInteractiveFieldsAreBooleans() {
        assertManifestError(manifest(container: "tty: sometimes"), "spec.containers[0].tty: must be a boolean")
    }

    func testCommandOfTheWrongType() {
        let spec = "{ containers: [{ name: a, image: b }, { name: c, image: b, command: %@ }] }"
        for command in ["echo hi", "[echo, [hi]]", "[echo, ~]", "[echo, { a: b }]", "{ a: b }"] {
            assertManifestError(
                manifest(spec: spec.replacingOccurrences(of: "%@", with: command)),
                "spec.containers[1].command: must be a list of strings"
            )
        }
        assertManifestError(manifest(container: "args: sh"), "spec.containers[0].args: must be a list of strings")
        assertManifestError(
            manifest(container: #"args: ["a\0b"]"#), "spec.containers[0].args[0]: must not contain a NUL character"
        )
    }

    func testMissingImage() {
        assertManifestError(manifest(spec: "{ containers: [{ name: app }] }"), "spec.containers[0].image: required")
        assertManifestError(manifest(spec: "{ containers: [{ name: app, image: '' }] }"), "spec.containers[0].image: required")
        assertManifestError(
            manifest(spec: "{ containers: [{ name: app, image: { name: busybox } }] }"),
            "spec.containers[0].image: must be a string"
        )
    }

    func testContainerNames() {
        assertManifestError(
            manifest(spec: "{ containers: [{ name: a, image: b }, { name: a, image: b }] }"),
            #"spec.containers[1].name: duplicate container name "a""#
        )
        assertManifestError(manifest(spec: "{ containers: [{ image: b }] }"), "spec.containers[0].name: required")
        assertManifestError(
            manifest(spec: "{ containers: [{ name: Server, image: b }] }"),
            "spec.containers[0].name: " + NameRules.labelRule
        )
    }

    func testBadEnv() {
        assertManifestError(manifest(container: "env: [{ value: x }]"), "spec.containers[0].env[0].name: required")
        assertManifestError(manifest(container: "env: [{ name: 'A=B' }]"), "spec.containers[0].env[0].name: must not contain '='")
        assertManifestError(
            manifest(container: "env: [{ name: A, valueFrom: {} }]"), "spec.containers[0].env[0].valueFrom: unknown field"
        )
        assertManifestError(manifest(container: "env: [{ name: A, value: [x] }]"), "spec.containers[0].env[0].value: must be a string")
        assertManifestError(manifest(container: "env: { A: b }"), "spec.containers[0].env: must be a list")
    }

    func testBadWorkingDir() {
        assertManifestError(manifest(container: "workingDir: srv"), "spec.containers[0].workingDir: must be an absolute path")
    }

    func testVolumeMountOfUndeclaredVolume() {
        assertManifestError(
            manifest(container: "volumeMounts: [{ name: data, mountPath: /data }]"),
            #"spec.containers[0].volumeMounts[0].name: no volume named "data" in spec.volumes"#
        )
    }

    func testBadVolumeMounts() {
        func mount(_ fields: String) -> String {
            manifest(container: "volumeMounts: [\(fields)]", volumes: "[{ name: v, emptyDir: {} }]")
        }
        let path = "spec.containers[0].volumeMounts"
        assertManifestError(mount("{ name: v }"), "\(path)[0].mountPath: required")
        assertManifestError(mount("{ name: v, mountPath: data }"), "\(path)[0].mountPath: must be an absolute path")
        assertManifestError(mount("{ name: v, mountPath: /data/../etc }"), "\(path)[0].mountPath: must not contain '..'")
        assertManifestError(
            mount("{ name: v, mountPath: /data }, { name: v, mountPath: /data }"),
            #"spec.containers[0].volumeMounts[1].mountPath: duplicate mount path "/data""#
        )
        assertManifestError(mount("{ name: v, mountPath: /d, readOnly: yes }"), "\(path)[0].readOnly: must be a boolean")
        assertManifestError(mount("{ name: v, mountPath: /d, subPath: /abs }"), "\(path)[0].subPath: must be a relative path")
        assertManifestError(mount("{ name: v, mountPath: /d, subPath: a/../.. }"), "\(path)[0].subPath: must not contain '..'")
        assertManifestError(mount("{ name: v, mountPath: /d, propagation: x }"), "\(path)[0].propagation: unknown field")
    }

    func testBadPorts() {
        func port(_ fields: String) -> String { manifest(container: "ports: [\(fields)]") }
        let path = "spec.containers[0].ports"
        assertManifestError(port("{ containerPort: 0 }"), "\(path)[0].containerPort: must be between 1 and 65535")
        assertManifestError(port("{ containerPort: 65536 }"), "\(path)[0].containerPort: must be between 1 and 65535")
        assertManifestError(port("{ containerPort: '80' }"), "\(path)[0].containerPort: must be an integer")
        assertManifestError(port("{ name: http }"), "\(path)[0].containerPort: required")
        assertManifestError(port("{ containerPort: 80, protocol: tcp }"), "\(path)[0].protocol: must be one of TCP, UDP, SCTP")
        assertManifestError(port("{ containerPort: 80, hostPort: 0 }"), "\(path)[0].hostPort: must be between 1 and 65535")
        assertManifestError(port("{ containerPort: 80, hostIP: 0.0.0.0 }"), "\(path)[0].hostIP: needs a hostPort")
        assertManifestError(port("{ containerPort: 80, hostPort: 8080, hostIP: localhost }"),
                            #"\#(path)[0].hostIP: "localhost" is not an IP address"#)
        XCTAssertEqual(parseManifest(port("{ containerPort: 80, hostPort: 8080, hostIP: 127.0.0.1 }"))?.containers.first?.ports,
                       [ContainerPort(containerPort: 80, protocol: "TCP", hostPort: 8080, hostIP: "127.0.0.1")])
        let nameRule = "\(path)[0].name: " + NameRules.serviceNameRule
        assertManifestError(port("{ name: HTTP, containerPort: 80 }"), nameRule)
        assertManifestError(port("{ name: \"8080\", containerPort: 80 }"), nameRule)
        assertManifestError(port("{ name: a-very-long-port-name, containerPort: 80 }"), nameRule)
        assertManifestError(
            port("{ name: http, containerPort: 80 }, { name: http, containerPort: 81 }"),
            #"spec.containers[0].ports[1].name: duplicate port name "http""#
        )
    }

    func testBadImagePullPolicy() {
        assertManifestError(
            manifest(container: "imagePullPolicy: Sometimes"),
            "spec.containers[0].imagePullPolicy: must be one of Always, IfNotPresent, Never"
        )
    }
}
