import XCTest
@testable import PodshimSpec

/// Manifests that parse, and the pods they become.
final class ManifestParserTests: XCTestCase {
    func testExampleManifest() {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata: { name: web, uid: optional-uuid }
            spec:
              hostname: web
              restartPolicy: Never
              terminationGracePeriodSeconds: 5
              volumes: [{ name: shared, emptyDir: {} }]
              containers:
              - name: server
                image: busybox
                command: [httpd, -f, -p, "8080"]
                env: [{ name: A, value: b }]
                workingDir: /
                volumeMounts: [{ name: shared, mountPath: /data }]
              - name: client
                image: busybox
                command: [sh, -c, "wget -qO- http://localhost:8080/ && sleep 1"]
            """
        let expected = PodSpec(
            name: "web", namespace: "default", uid: "optional-uuid", labels: [:], annotations: [:],
            hostname: "web", restartPolicy: .never, terminationGracePeriodSeconds: 5,
            shareProcessNamespace: false,
            volumes: [Volume(name: "shared", source: .emptyDir(medium: .disk, sizeLimit: nil))],
            containers: [
                ContainerSpec(
                    name: "server", image: "busybox", command: ["httpd", "-f", "-p", "8080"], args: [],
                    env: [EnvVar(name: "A", value: "b")], workingDir: "/",
                    volumeMounts: [VolumeMount(name: "shared", mountPath: "/data", readOnly: false, subPath: nil)],
                    ports: [], imagePullPolicy: nil
                ),
                ContainerSpec(
                    name: "client", image: "busybox",
                    command: ["sh", "-c", "wget -qO- http://localhost:8080/ && sleep 1"]
                ),
            ]
        )
        XCTAssertEqual(parseManifest(yaml), expected)
    }

    func testDefaults() throws {
        let pod = try XCTUnwrap(parseManifest(manifest()))
        XCTAssertEqual(pod.name, "web")
        XCTAssertEqual(pod.namespace, "default")
        XCTAssertNil(pod.uid)
        XCTAssertEqual(pod.labels, [:])
        XCTAssertEqual(pod.annotations, [:])
        XCTAssertEqual(pod.hostname, "web")
        XCTAssertEqual(pod.restartPolicy, .always)
        XCTAssertEqual(pod.terminationGracePeriodSeconds, 30)
        XCTAssertFalse(pod.shareProcessNamespace)
        XCTAssertEqual(pod.volumes, [])
        XCTAssertEqual(pod.containers, [ContainerSpec(name: "app", image: "busybox")])
        let container = try XCTUnwrap(pod.containers.first)
        XCTAssertEqual(container.command, [])
        XCTAssertEqual(container.args, [])
        XCTAssertEqual(container.env, [])
        XCTAssertNil(container.workingDir)
        XCTAssertNil(container.imagePullPolicy)
    }

    func testEveryField() {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata:
              name: db.example
              namespace: prod
              uid: 0b1c_2D-3e
              labels: { app: db, app.kubernetes.io/tier: backend }
              annotations: { note: "two words", count: 3 }
            spec:
              hostname: database
              restartPolicy: OnFailure
              terminationGracePeriodSeconds: 0
              shareProcessNamespace: true
              volumes:
              - name: scratch
                emptyDir: { medium: Memory, sizeLimit: 64Mi }
              - name: bytes
                emptyDir: { sizeLimit: 1000 }
              - name: plain
                emptyDir:
              - name: host
                hostPath: { path: /var/lib/db, type: DirectoryOrCreate }
              - name: sock
                hostPath: { path: /run/db.sock }
              containers:
              - name: db
                image: /images/db
                command: [db, --port, 5432]
                args: ["", --verbose, true]
                env:
                - { name: EMPTY }
                - { name: PORT, value: "5432" }
                - { name: RAW, value: 5432 }
                workingDir: /srv
                volumeMounts:
                - { name: scratch, mountPath: /tmp }
                - { name: host, mountPath: /var/lib/db, readOnly: true, subPath: data/current }
                ports:
                - { name: pg, containerPort: 5432 }
                - { containerPort: 53, protocol: UDP }
                imagePullPolicy: IfNotPresent
            """
        let expected = PodSpec(
            name: "db.example", namespace: "prod", uid: "0b1c_2D-3e",
            labels: ["app": "db", "app.kubernetes.io/tier": "backend"],
            annotations: ["note": "two words", "count": "3"],
            hostname: "database", restartPolicy: .onFailure, terminationGracePeriodSeconds: 0,
            shareProcessNamespace: true,
            volumes: [
                Volume(name: "scratch", source: .emptyDir(medium: .memory, sizeLimit: "64Mi")),
                Volume(name: "bytes", source: .emptyDir(medium: .disk, sizeLimit: "1000")),
                Volume(name: "plain", source: .emptyDir(medium: .disk, sizeLimit: nil)),
                Volume(name: "host", source: .hostPath(path: "/var/lib/db", type: .directoryOrCreate)),
                Volume(name: "sock", source: .hostPath(path: "/run/db.sock", type: .unset)),
            ],
            containers: [
                ContainerSpec(
                    name: "db", image: "/images/db", command: ["db", "--port", "5432"],
                    args: ["", "--verbose", "true"],
                    env: [
                        EnvVar(name: "EMPTY", value: ""), EnvVar(name: "PORT", value: "5432"),
                        EnvVar(name: "RAW", value: "5432"),
                    ],
                    workingDir: "/srv",
                    volumeMounts: [
                        VolumeMount(name: "scratch", mountPath: "/tmp"),
                        VolumeMount(name: "host", mountPath: "/var/lib/db", readOnly: true, subPath: "data/current"),
                    ],
                    ports: [
                        ContainerPort(name: "pg", containerPort: 5432, protocol: "TCP"),
                        ContainerPort(name: nil, containerPort: 53, protocol: "UDP"),
                    ],
                    imagePullPolicy: "IfNotPresent"
                ),
            ]
        )
        XCTAssertEqual(parseManifest(yaml), expected)
    }

    func testHostnameDefaultsToPodName() throws {
        let dotted = try XCTUnwrap(parseManifest(manifest(metadata: "{ name: web.example.com }")))
        XCTAssertEqual(dotted.hostname, "web.example.com")

        // 70 characters: cut to 63, and the '-' the cut leaves at the end goes too.
        let long = String(repeating: "a", count: 62) + "-" + String(repeating: "b", count: 7)
        let pod = try XCTUnwrap(parseManifest(manifest(metadata: "{ name: \(long) }")))
        XCTAssertEqual(pod.hostname, String(repeating: "a", count: 62))
    }

    func testNullAndEmptyValuesMeanAbsent() throws {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata: { name: web, namespace: "", uid: ~ }
            spec:
              hostname:
              restartPolicy: ""
              terminationGracePeriodSeconds: null
              volumes:
              containers:
              - { name: app, image: busybox, command: ~, workingDir: "", imagePullPolicy: "" }
            """
        let pod = try XCTUnwrap(parseManifest(yaml))
        XCTAssertEqual(pod, PodSpec(name: "web", containers: [ContainerSpec(name: "app", image: "busybox")]))
    }

    func testQuotedStringsAndExplicitTags() throws {
        let yaml = manifest(container: #"command: ['true', "null", !!str 5, ~x, 5.5, 0x1F]"#)
        let pod = try XCTUnwrap(parseManifest(yaml))
        XCTAssertEqual(pod.containers.first?.command, ["true", "null", "5", "~x", "5.5", "0x1F"])
    }

    func testAnchorsAndAliases() throws {
        let yaml = """
            apiVersion: v1
            kind: Pod
            metadata: { name: web }
            spec:
              containers:
              - { name: a, image: &image busybox, env: &env [{ name: X, value: "1" }] }
              - { name: b, image: *image, env: *env }
            """
        let pod = try XCTUnwrap(parseManifest(yaml))
        XCTAssertEqual(pod.containers.map(\.image), ["busybox", "busybox"])
        XCTAssertEqual(pod.containers.map(\.env), [[EnvVar(name: "X", value: "1")], [EnvVar(name: "X", value: "1")]])
    }

    func testMountPathsAreComparedNormalized() {
        assertManifestError(
            manifest(
                container: "volumeMounts: [{ name: v, mountPath: /data }, { name: v, mountPath: //data/./ }]",
                volumes: "[{ name: v, emptyDir: {} }]"
            ),
            #"spec.containers[0].volumeMounts[1].mountPath: duplicate mount path "//data/./""#
        )
    }

    func testParseContentsOfFile() throws {
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("podshim-spec-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let file = directory.appendingPathComponent("pod.yaml")
        try manifest().write(to: file, atomically: false, encoding: .utf8)
        XCTAssertEqual(try ManifestParser.parse(contentsOf: file.path).name, "web")

        let missing = directory.appendingPathComponent("missing.yaml").path
        XCTAssertThrowsError(try ManifestParser.parse(contentsOf: missing)) { error in
            XCTAssertEqual(
                error as? ManifestError,
                ManifestError(path: "manifest", message: "cannot read \(missing): No such file or directory")
            )
        }

        let binary = directory.appendingPathComponent("binary.yaml")
        try Data([0x61, 0xFF, 0xFE]).write(to: binary)
        XCTAssertThrowsError(try ManifestParser.parse(contentsOf: binary.path)) { error in
            XCTAssertEqual(
                error as? ManifestError,
                ManifestError(path: "manifest", message: "cannot read \(binary.path): not UTF-8 text")
            )
        }

        XCTAssertThrowsError(try ManifestParser.parse(contentsOf: directory.path)) { error in
            XCTAssertEqual(
                error as? ManifestError,
                ManifestError(path: "manifest", message: "cannot read \(directory.path): Is a directory")
            )
        }

        let broken = directory.appendingPathComponent("broken.yaml")
        try "apiVersion: v2\nkind: Pod\n".write(to: broken, atomically: false, encoding: .utf8)
        XCTAssertThrowsError(try ManifestParser.parse(contentsOf: broken.path)) { error in
            XCTAssertEqual(error as? ManifestError, ManifestError(path: "apiVersion", message: "must be v1"))
        }
    }

    func testErrorDescription() {
        let error = ManifestError(path: "spec.containers[1].command", message: "must be a list of strings")
        XCTAssertEqual(error.description, "spec.containers[1].command: must be a list of strings")
        XCTAssertEqual("\(error)", "spec.containers[1].command: must be a list of strings")
    }
}
