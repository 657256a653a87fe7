import Synchronization
import Foundation
import Glibc
import XCTest
@testable import PodshimImages
@testable import PodshimRuntime
import PodshimSpec
import PodshimSystem

/// ImageStore: image references → root filesystem directories; PodPlanner's image errors; the
/// CRI image service over the store (list, status, pull from directories and OCI layouts, remove,
/// usage); SHA-256.
final class ImageStoreTests: XCTestCase {
    private var temporary: TemporaryDirectory!
    private var store: ImageStore!
    /// Whether the fixture layer got its `user.podshim` extended attribute.
    private var xattrsSupported = false

    override func setUpWithError() throws {
        temporary = try TemporaryDirectory()
        store = ImageStore(directory: temporary.path)
    }

    override func tearDown() {
        temporary?.remove()
        temporary = nil
    }

    private func resolveError(_ image: String, in store: ImageStore? = nil,
                              file: StaticString = #filePath, line: UInt = #line) -> ImageStore.ResolveError? {
        let store = store ?? self.store!
        return assertThrows(ImageStore.ResolveError.self, file: file, line: line) {
            _ = try store.rootfs(for: image)
        }
    }

    func testStoreNameResolvesToRootfs() throws {
        let rootfs = try temporary.makeDirectory("busybox/rootfs")
        XCTAssertEqual(try store.rootfs(for: "busybox"), rootfs)
        XCTAssertEqual(rootfs, temporary.path + "/busybox/rootfs")
    }

    func testLatestTagIsTheBareName() throws {
        try temporary.makeDirectory("busybox/rootfs")
        XCTAssertEqual(try store.rootfs(for: "busybox:latest"), temporary.path + "/busybox/rootfs")
        XCTAssertEqual(try store.rootfs(for: "busybox:latest"), try store.rootfs(for: "busybox"))
    }

    func testTagBecomesUnderscoreSuffix() throws {
        try temporary.makeDirectory("busybox/rootfs")
        try temporary.makeDirectory("busybox_1.36/rootfs")
        XCTAssertEqual(try store.rootfs(for: "busybox:1.36"), temporary.path + "/busybox_1.36/rootfs")
    }

    func testStoreNames() throws {
        XCTAssertEqual(try store.storeName("busybox"), "busybox")
        XCTAssertEqual(try store.storeName("busybox:latest"), "busybox")
        XCTAssertEqual(try store.storeName("busybox:1.36"), "busybox_1.36")
        XCTAssertEqual(try store.storeName("my-app_2.0"), "my-app_2.0")
        XCTAssertEqual(try store.storeName("Alpine:3.19-rc1"), "Alpine_3.19-rc1")
    }

    func testAbsolutePathIsAccepted() throws {
        let rootfs = try temporary.makeDirectory("elsewhere/root")
        XCTAssertEqual(try store.rootfs(for: rootfs), rootfs)
        // Absolute paths bypass the store entirely.
        XCTAssertEqual(try ImageStore(directory: "/nonexistent-store").rootfs(for: rootfs), rootfs)
    }

    func testMissingStoreImageIsNotFound() {
        let error = resolveError("missing")
        XCTAssertEqual(error, .notFound(image: "missing", looked: temporary.path + "/missing/rootfs"))
        XCTAssertEqual(error?.description,
                       "image \"missing\" is not in the local store (no reference, id or directory \(temporary.path)/missing/rootfs); "
                       + "import it with: podshim images import --image-dir DIR SRC missing")
    }

    func testMissingTaggedImageNamesTheReference() {
        XCTAssertEqual(resolveError("busybox:9.9"),
                       .notFound(image: "busybox:9.9", looked: temporary.path + "/busybox_9.9/rootfs"))
    }

    func testImageDirectoryWithoutRootfsIsNotFound() throws {
        try temporary.makeDirectory("empty")
        XCTAssertEqual(resolveError("empty"), .notFound(image: "empty", looked: temporary.path + "/empty/rootfs"))
    }

    func testMissingAbsolutePathIsNotFound() {
        let path = temporary.path + "/nope"
        XCTAssertEqual(resolveError(path), .notFound(image: path, looked: path))
    }

    func testFileInsteadOfDirectory() throws {
        let file = try temporary.makeFile("flat/rootfs", contents: "not a directory")
        let error = resolveError("flat")
        XCTAssertEqual(error, .notADirectory(file))
        XCTAssertEqual(error?.description, "image \(file) is not a directory")
        XCTAssertEqual(resolveError(file), .notADirectory(file))
    }

    func testInvalidNames() {
        for name in ["../x", "", ".hidden", "..", ":latest", "busy box", "bad$name", "./x", "ñ"] {
            XCTAssertEqual(resolveError(name), .invalidName(name), "name \(name.debugDescription)")
        }
        // A well-formed reference with a registry or path is valid; it is just not in the store.
        XCTAssertEqual(resolveError("a/b"), .notFound(image: "a/b", looked: temporary.path + "/a_b/rootfs"))
    }

    func testInvalidNameDescription() {
        XCTAssertEqual(ImageStore.ResolveError.invalidName("a/b").description,
                       "image \"a/b\" is not an absolute path or a store name ([A-Za-z0-9._-], optionally with :tag)")
    }

    func testCommaInAbsolutePathIsUnusable() throws {
        let path = try temporary.makeDirectory("with,comma")
        let error = resolveError(path)
        XCTAssertEqual(error, .unusablePath(path))
        XCTAssertEqual(error?.description,
                       "image path \(path) contains ',' ':' or a newline, which overlayfs options cannot carry")
    }

    func testColonAndNewlineInAbsolutePathAreUnusable() throws {
        let colon = try temporary.makeDirectory("with:colon")
        XCTAssertEqual(resolveError(colon), .unusablePath(colon))
        XCTAssertEqual(resolveError("/img/a\nb"), .unusablePath("/img/a\nb"))
    }

    func testCommaInStoreDirectoryIsUnusable() throws {
        let commaStore = try temporary.makeDirectory("st,ore")
        try temporary.makeDirectory("st,ore/busybox/rootfs")
        XCTAssertEqual(resolveError("busybox", in: ImageStore(directory: commaStore)),
                       .unusablePath(commaStore + "/busybox/rootfs"))
    }

    // MARK: PodPlanner

    private func configuration() -> RuntimeConfiguration {
        RuntimeConfiguration(stateDirectory: "/run/x", rootDirectory: "/var/lib/x", imageDirectory: temporary.path,
                             logDirectory: "/var/log/x", pauseBinary: "/p")
    }

    func testPodPlannerPlansEveryContainer() throws {
        let rootfs = try temporary.makeDirectory("busybox/rootfs")
        let tagged = try temporary.makeDirectory("alpine_3/rootfs")
        let pod = PodSpec(name: "web", containers: [
            ContainerSpec(name: "a", image: "busybox", command: ["true"]),
            ContainerSpec(name: "b", image: "alpine:3", command: ["sleep", "1"]),
        ])
        let layout = PodLayout(pod: pod, podID: "u", configuration: configuration())
        let plans = try PodPlanner.plan(pod, layout: layout, configuration: configuration())
        XCTAssertEqual(plans.count, 2)
        XCTAssertEqual(plans[0].argv, ["true"])
        XCTAssertEqual(plans[0].rootfsMount?.data,
                       "lowerdir=\(rootfs),upperdir=/var/lib/x/pods/u/containers/a/upper,"
                           + "workdir=/var/lib/x/pods/u/containers/a/work")
        XCTAssertEqual(plans[1].argv, ["sleep", "1"])
        XCTAssertEqual(plans[1].rootfsMount?.data,
                       "lowerdir=\(tagged),upperdir=/var/lib/x/pods/u/containers/b/upper,"
                           + "workdir=/var/lib/x/pods/u/containers/b/work")
    }

    func testPodPlannerNamesTheMissingImageField() throws {
        try temporary.makeDirectory("busybox/rootfs")
        let pod = PodSpec(name: "web", containers: [
            ContainerSpec(name: "a", image: "busybox", command: ["true"]),
            ContainerSpec(name: "b", image: "nginx:1.25", command: ["nginx"]),
        ])
        let layout = PodLayout(pod: pod, podID: "u", configuration: configuration())
        let error = assertThrows(ManifestError.self) {
            _ = try PodPlanner.plan(pod, layout: layout, configuration: self.configuration())
        }
        XCTAssertEqual(error, ManifestError(
            path: "spec.containers[1].image",
            message: "image \"nginx:1.25\" is not in the local store (no reference, id or directory \(temporary.path)/nginx_1.25/rootfs); "
                + "import it with: podshim images import --image-dir DIR SRC nginx:1.25"))
    }

    func testPodPlannerReportsInvalidImageName() {
        let pod = PodSpec(name: "web", containers: [ContainerSpec(name: "a", image: "../etc", command: ["true"])])
        let layout = PodLayout(pod: pod, podID: "u", configuration: configuration())
        let error = assertThrows(ManifestError.self) {
            _ = try PodPlanner.plan(pod, layout: layout, configuration: self.configuration())
        }
        XCTAssertEqual(error?.path, "spec.containers[0].image")
        XCTAssertEqual(error?.message, ImageStore.ResolveError.invalidName("../etc").description)
    }

    func testPodPlannerAppliesTheImageConfigAsKubernetesDoes() throws {
        try temporary.makeDirectory("src/app/bin")
        let image = ImageConfig(entrypoint: ["/bin/app"], cmd: ["--serve"], env: ["PATH=/bin", "MODE=image"], workingDir: "/srv")
        let record = try store.importImage(from: temporary.path + "/src/app", as: "app:1", config: image)
        var withArgs = ContainerSpec(name: "b", image: "app:1", args: ["--once"])
        withArgs.env = [EnvVar(name: "MODE", value: "mine")]
        let pod = PodSpec(name: "web", containers: [
            ContainerSpec(name: "a", image: "app:1"),
            withArgs,
            ContainerSpec(name: "c", image: record.id, command: ["/bin/sh"]),
        ])
        let layout = PodLayout(pod: pod, podID: "u", configuration: configuration())
        let plans = try PodPlanner.plan(pod, layout: layout, configuration: configuration())
        XCTAssertEqual(plans.map(\.argv), [["/bin/app", "--serve"], ["/bin/app", "--once"], ["/bin/sh"]])
        XCTAssertEqual(plans.map(\.workingDirectory), ["/srv", "/srv", "/srv"])
        XCTAssertTrue(plans[0].environment.contains("MODE=image"))
        XCTAssertTrue(plans[1].environment.contains("MODE=mine"))
        XCTAssertFalse(plans[1].environment.contains("MODE=image"))
    }

    func testPodPlannerReportsMissingCommandAfterImage() throws {
        try temporary.makeDirectory("busybox/rootfs")
        let pod = PodSpec(name: "web", containers: [
            ContainerSpec(name: "a", image: "busybox", command: ["true"]),
            ContainerSpec(name: "b", image: "busybox"),
        ])
        let layout = PodLayout(pod: pod, podID: "u", configuration: configuration())
        let error = assertThrows(ManifestError.self) {
            _ = try PodPlanner.plan(pod, layout: layout, configuration: self.configuration())
        }
        XCTAssertEqual(error?.path, "spec.containers[1].command")
    }
}

// MARK: - Fixtures for the image service

/// A failed fixture step (a helper command that did not succeed).
private struct FixtureError: Error, CustomStringConvertible {
    var description: String
}

/// An OCI layout written by a test, and the digests a pull of it must report.
private struct LayoutFixture {
    var path: String
    var configDigest: String
    /// The image manifest of the `3.19` image (behind a nested index).
    var manifestDigest: String
    /// The nested index that `3.19` names in index.json: the repository digest.
    var indexDigest: String
    /// The Docker schema 2 manifest named `other` (same config, both layers gzipped).
    var otherManifestDigest: String
    var plainLayerBlob: String
    var gzipLayerBlob: String
}

extension ImageStoreTests {
    /// The store the image-service tests use; sources live beside it in `src/`.
    private var images: ImageStore { ImageStore(directory: temporary.path + "/store") }
    private var storePath: String { temporary.path + "/store" }
    private var sources: String { temporary.path + "/src" }

    private static let expectedConfig = ImageConfig(
        entrypoint: ["/bin/tool"], cmd: ["--serve"], env: ["PATH=/bin", "MODE=test"],
        workingDir: "/data", user: "1000:1000")

    private static var otherArchitecture: String { OCILayout.hostArchitecture == "s390x" ? "riscv64" : "s390x" }

    private func run(_ arguments: [String]) throws {
        let result = try HelperCommand(arguments).run()
        guard result.succeeded else {
            throw FixtureError(description: "\(arguments.joined(separator: " ")): \(result.status): \(result.stderrText)")
        }
    }

    @discardableResult
    private func write(_ relative: String, _ contents: String, mode: mode_t = 0o644) throws -> String {
        let path = try temporary.makeFile(relative, contents: contents)
        XCTAssertEqual(chmod(path, mode), 0)
        return path
    }

    private func symlink(_ relative: String, to destination: String) throws {
        let path = temporary.path + "/" + relative
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        XCTAssertEqual(Glibc.symlink(destination, path), 0)
    }

    private func addBlob(_ data: Data, to layout: String) throws -> OCIDescriptor {
        let hex = SHA256.hexDigest(of: [UInt8](data))
        try data.write(to: URL(fileURLWithPath: layout + "/blobs/sha256/" + hex))
        return OCIDescriptor(mediaType: nil, digest: "sha256:" + hex, size: Int64(data.count))
    }

    private func addBlob(file: String, mediaType: String, to layout: String) throws -> OCIDescriptor {
        var descriptor = try addBlob(Data(contentsOf: URL(fileURLWithPath: file)), to: layout)
        descriptor.mediaType = mediaType
        return descriptor
    }

    private func addJSON<T: Encodable>(_ value: T, mediaType: String?, to layout: String,
                                       annotations: [String: String]? = nil,
                                       platform: OCIPlatform? = nil) throws -> OCIDescriptor {
        var descriptor = try addBlob(JSONEncoder().encode(value), to: layout)
        descriptor.mediaType = mediaType
        descriptor.annotations = annotations
        descriptor.platform = platform
        return descriptor
    }

    /// An empty layout at `src/<name>`: `oci-layout` and `blobs/sha256/`.
    private func makeLayoutDirectory(_ name: String) throws -> String {
        let layout = try temporary.makeDirectory("src/" + name + "/blobs/sha256")
        _ = layout
        let path = sources + "/" + name
        try write("src/\(name)/oci-layout", #"{"imageLayoutVersion":"1.0.0"}"#)
        return path
    }

    private func writeIndex(_ index: OCIIndex, layout: String) throws {
        try JSONEncoder().encode(index).write(to: URL(fileURLWithPath: layout + "/index.json"))
    }

    /// Two layers. The first (plain tar, with a `./` root entry) has etc/{hostname,gone,secret},
    /// bin/tool, data/{a,b}, opq/{lower1,sub/lower2} and a symlink `link` → etc/hostname. The second
    /// (gzip) replaces etc/hostname, whites out etc/gone and the whole data/, makes opq/ opaque
    /// (adding opq/new), and adds fresh/file in a new directory that carries an opaque marker.
    private func makeLayers() throws -> (plain: String, gzip: String, plainGzip: String) {
        try write("src/l1/etc/hostname", "one\n")
        try write("src/l1/etc/gone", "bye\n")
        try write("src/l1/etc/secret", "s", mode: 0o600)
        try write("src/l1/bin/tool", "#!/bin/sh\n", mode: 0o755)
        try write("src/l1/data/a", "a")
        try write("src/l1/data/b", "bb")
        try write("src/l1/opq/lower1", "1")
        try write("src/l1/opq/sub/lower2", "2")
        try symlink("src/l1/link", to: "etc/hostname")
        // user.* extended attributes travel with the layer (when this file system has them).
        xattrsSupported = XattrCalls.set(sources + "/l1/bin/tool", "user.podshim", "1")
        try write("src/l2/etc/hostname", "two\n")
        try write("src/l2/etc/.wh.gone", "")
        try write("src/l2/.wh.data", "")
        try write("src/l2/opq/.wh..wh..opq", "")
        try write("src/l2/opq/new", "new")
        try write("src/l2/fresh/.wh..wh..opq", "")
        try write("src/l2/fresh/file", "f")
        let plain = sources + "/layer1.tar", gzip = sources + "/layer2.tar.gz", plainGzip = sources + "/layer1.tar.gz"
        try run(["/bin/tar", "-c", "--xattrs", "-f", plain, "-C", sources + "/l1", "."])
        try run(["/bin/tar", "-c", "-z", "-f", gzip, "-C", sources + "/l2", ".wh.data", "etc", "fresh", "opq"])
        try run(["/bin/tar", "-c", "-z", "-f", plainGzip, "-C", sources + "/l1", "."])
        return (plain, gzip, plainGzip)
    }

    /// The layout `src/alpine-oci`: `3.19` → nested index (another architecture first, with a blob
    /// that does not exist, then this machine's) → OCI manifest with both layers; `other` → Docker
    /// schema 2 manifest with the same config; `foreign` → an index with only another architecture.
    private func makeLayout() throws -> LayoutFixture {
        let layers = try makeLayers()
        let layout = try makeLayoutDirectory("alpine-oci")
        let configuration = OCIImageConfiguration(
            created: "2024-05-06T07:08:09.123456789Z", architecture: OCILayout.hostArchitecture, os: "linux",
            config: .init(entrypoint: ["/bin/tool"], cmd: ["--serve"], env: ["PATH=/bin", "MODE=test"],
                          workingDir: "/data", user: "1000:1000"))
        let config = try addJSON(configuration, mediaType: OCIMediaType.imageConfig, to: layout)
        let plain = try addBlob(file: layers.plain, mediaType: "application/vnd.oci.image.layer.v1.tar", to: layout)
        let gzip = try addBlob(file: layers.gzip, mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", to: layout)
        let manifest = try addJSON(
            OCIManifest(schemaVersion: 2, mediaType: OCIMediaType.imageManifest, config: config, layers: [plain, gzip]),
            mediaType: OCIMediaType.imageManifest, to: layout,
            platform: OCIPlatform(architecture: OCILayout.hostArchitecture, os: "linux"))
        let missing = OCIDescriptor(mediaType: OCIMediaType.imageManifest, digest: "sha256:" + String(repeating: "0", count: 64),
                                    size: 10, platform: OCIPlatform(architecture: Self.otherArchitecture, os: "linux"))
        let nested = try addJSON(OCIIndex(schemaVersion: 2, mediaType: OCIMediaType.imageIndex, manifests: [missing, manifest]),
                                 mediaType: OCIMediaType.imageIndex, to: layout,
                                 annotations: [OCIDescriptor.refNameAnnotation: "3.19"])
        let foreign = try addJSON(OCIIndex(schemaVersion: 2, mediaType: OCIMediaType.imageIndex, manifests: [missing]),
                                  mediaType: OCIMediaType.imageIndex, to: layout,
                                  annotations: [OCIDescriptor.refNameAnnotation: "foreign"])
        var dockerConfig = config
        dockerConfig.mediaType = OCIMediaType.dockerConfig
        let dockerLayers = [
            try addBlob(file: layers.plainGzip, mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", to: layout),
            try addBlob(file: layers.gzip, mediaType: "application/vnd.docker.image.rootfs.diff.tar.gzip", to: layout),
        ]
        let other = try addJSON(
            OCIManifest(schemaVersion: 2, mediaType: OCIMediaType.dockerManifest, config: dockerConfig, layers: dockerLayers),
            mediaType: nil, to: layout, annotations: [OCIDescriptor.refNameAnnotation: "other"])
        try writeIndex(OCIIndex(schemaVersion: 2, mediaType: OCIMediaType.imageIndex, manifests: [nested, other, foreign]),
                       layout: layout)
        return LayoutFixture(path: layout, configDigest: config.digest, manifestDigest: manifest.digest,
                             indexDigest: nested.digest, otherManifestDigest: other.digest,
                             plainLayerBlob: layout + "/blobs/sha256/" + plain.digest.dropFirst(7),
                             gzipLayerBlob: layout + "/blobs/sha256/" + gzip.digest.dropFirst(7))
    }

    /// A layout `src/<name>` with one image whose layers are the given files.
    private func makeSingleImageLayout(_ name: String, layers: [(file: String, mediaType: String)]) throws -> String {
        let layout = try makeLayoutDirectory(name)
        let config = try addJSON(OCIImageConfiguration(architecture: OCILayout.hostArchitecture, os: "linux"),
                                 mediaType: OCIMediaType.imageConfig, to: layout)
        var descriptors: [OCIDescriptor] = []
        for layer in layers { descriptors.append(try addBlob(file: layer.file, mediaType: layer.mediaType, to: layout)) }
        let manifest = try addJSON(OCIManifest(schemaVersion: 2, mediaType: OCIMediaType.imageManifest, config: config,
                                               layers: descriptors),
                                   mediaType: OCIMediaType.imageManifest, to: layout)
        try writeIndex(OCIIndex(schemaVersion: 2, mediaType: nil, manifests: [manifest]), layout: layout)
        return layout
    }

    // MARK: podshim images import: references, archives, content ids

    func testImportOfTheThreeSourceKinds() throws {
        // A root filesystem directory, with a default process.
        try write("src/rootfs/bin/sh", "#!/bin/sh\n", mode: 0o755)
        let config = ImageConfig(cmd: ["sh"], env: ["A=1"], workingDir: "/")
        let plain = try images.importImage(from: sources + "/rootfs", as: "registry.example:5000/team/tool:1.0", config: config)
        XCTAssertEqual(plain.repoTags, ["registry.example:5000/team/tool:1.0"])
        XCTAssertEqual(plain.config, config)
        XCTAssertEqual(images.status("registry.example:5000/team/tool:1.0"), plain)
        XCTAssertEqual(try images.rootfs(for: "registry.example:5000/team/tool:1.0"), plain.rootfs)
        XCTAssertEqual(try images.rootfs(for: plain.id), plain.rootfs, "an id names the image too")

        // An OCI image layout, and the same layout as a tar archive and as a gzip'd one.
        let fixture = try makeLayout()
        let layout = try images.importImage(from: fixture.path + ":3.19", as: "alpine")
        XCTAssertEqual(layout.id, fixture.configDigest)
        XCTAssertEqual(layout.repoTags, ["alpine:latest"])
        XCTAssertEqual(layout.config.entrypoint, ["/bin/tool"])
        let single = try makeSingleImageLayout("single", layers: [(fixture.plainLayerBlob, "application/vnd.oci.image.layer.v1.tar")])
        try run(["/bin/tar", "-cf", sources + "/single.tar", "-C", single, "."])
        try run(["/bin/sh", "-c", "gzip -c '\(sources)/single.tar' > '\(sources)/single.tar.gz'"])
        let archived = try images.importImage(from: sources + "/single.tar", as: "single:tar")
        let gzipped = try images.importImage(from: sources + "/single.tar.gz", as: "single:gz")
        XCTAssertEqual(archived.id, gzipped.id, "one content, one image")
        XCTAssertEqual(images.status("single:gz")?.repoTags, ["single:tar", "single:gz"])
        XCTAssertEqual(storeEntries().filter { $0.hasPrefix(".") }, [], "nothing unpacked is left behind")

        // Not an image.
        try write("src/notes.tar.txt", "plain text")
        guard case .commandFailed = try? XCTUnwrap(importError(sources + "/notes.tar.txt", as: "x")) else {
            return XCTFail("a text file was accepted as an archive")
        }
        try run(["/bin/tar", "-cf", sources + "/rootfs.tar", "-C", sources + "/rootfs", "."])
        XCTAssertEqual(importError(sources + "/rootfs.tar", as: "x"), .notAnOCILayout(sources + "/rootfs.tar"))
        XCTAssertEqual(importError(sources + "/missing", as: "x"), .notFound(sources + "/missing"))
        for bad in ["Upper/case", "a//b", "-lead", "x:", "x@sha256:" + String(repeating: "0", count: 64), "/abs"] {
            XCTAssertEqual(importError(sources + "/rootfs", as: bad), .invalidName(bad), bad)
        }
    }

    func testReferencesMoveAndUntagKeepsTheImage() throws {
        try write("src/one/etc/v", "1")
        try write("src/two/etc/v", "2")
        let one = try images.importImage(from: sources + "/one", as: "app:1")
        let again = try images.importImage(from: sources + "/one", as: "docker.io/library/app:stable")
        XCTAssertEqual(again.id, one.id)
        XCTAssertEqual(again.repoTags, ["app:1", "app:stable"], "a second reference, no second copy")
        XCTAssertEqual(images.list().count, 1)

        let two = try images.importImage(from: sources + "/two", as: "app:stable")
        XCTAssertNotEqual(two.id, one.id)
        XCTAssertEqual(images.status("app:stable")?.id, two.id, "the reference moved")
        XCTAssertEqual(images.status("app:1")?.repoTags, ["app:1"])

        XCTAssertEqual(try images.untag("app:stable"), .removed([two]), "its last reference removes the image")
        _ = try images.importImage(from: sources + "/one", as: "app:latest")
        guard case .untagged(let kept) = try images.untag("app:1") else { return XCTFail("expected untagged") }
        XCTAssertEqual(kept.repoTags, ["app:latest"])
        XCTAssertEqual(images.status("app")?.id, one.id)
        XCTAssertEqual(try images.untag(one.id), .removed([kept]))
        XCTAssertEqual(try images.untag("app"), .notFound)
        XCTAssertEqual(images.list(), [])
    }

    func testContentIDIgnoresNameButNotContentOrConfig() throws {
        try write("src/a/bin/x", "same")
        try write("src/b/bin/x", "same")
        let a = ImageStore.directoryID(sources + "/a", config: ImageConfig())
        XCTAssertEqual(a, ImageStore.directoryID(sources + "/b", config: ImageConfig()))
        XCTAssertNotEqual(a, ImageStore.directoryID(sources + "/a", config: ImageConfig(cmd: ["sh"])))
        try write("src/b/bin/x", "diff")
        XCTAssertNotEqual(a, ImageStore.directoryID(sources + "/b", config: ImageConfig()))
    }

    func testReferenceGrammar() {
        for good in ["busybox", "busybox:1.36", "library/busybox", "registry.k8s.io/e2e-test-images/busybox:1.29-2",
                     "localhost:5000/app:v_1", "a.b-c/d__e:X.y-Z"] {
            XCTAssertTrue(ImageReference.isValidTagReference(good), good)
        }
        for bad in ["", "Busybox", "a//b", "/abs", "a/", "x:", "x:-lead", "..:5/x", "a b", "x@sha256:00",
                    "host:port/x", String(repeating: "a", count: 256), "x:" + String(repeating: "t", count: 129)] {
            XCTAssertFalse(ImageReference.isValidTagReference(bad), bad)
        }
    }

    private func importError(_ source: String, as reference: String) -> ImagePullError? {
        do {
            _ = try images.importImage(from: source, as: reference)
            return nil
        } catch {
            return error
        }
    }

    private func pullError(_ reference: String, tagAs: String? = nil, in store: ImageStore? = nil,
                           file: StaticString = #filePath, line: UInt = #line) -> ImagePullError? {
        let store = store ?? images
        return assertThrows(ImagePullError.self, file: file, line: line) {
            _ = try store.pull(reference, tagAs: tagAs)
        }
    }

    private func contents(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    private func mode(_ path: String) -> mode_t {
        var info = stat()
        XCTAssertEqual(lstat(path, &info), 0, path)
        return info.st_mode & 0o7777
    }

    /// Every path below `root`, relative, sorted.
    private func tree(_ root: String) -> [String] {
        var paths: [String] = []
        FileTree.walk(root) { relative, _ in paths.append(relative) }
        return paths.sorted()
    }

    /// Entries of the store directory itself (staging leftovers would show here).
    /// The store's entries, without the reference lock file every pull creates.
    private func storeEntries() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: storePath).sorted()) ?? []).filter { $0 != ".lock" }
    }

    // MARK: OCI layouts

    func testPullOCILayoutAppliesLayersAndWhiteouts() throws {
        let fixture = try makeLayout()
        let record = try images.pull(fixture.path + ":3.19")
        let rootfs = storePath + "/alpine-oci_3.19/rootfs"
        XCTAssertEqual(record.rootfs, rootfs)
        XCTAssertEqual(tree(rootfs), [
            "bin", "bin/tool", "etc", "etc/hostname", "etc/secret", "fresh", "fresh/file", "link", "opq", "opq/new",
        ])
        XCTAssertEqual(contents(rootfs + "/etc/hostname"), "two\n")
        XCTAssertEqual(contents(rootfs + "/opq/new"), "new")
        XCTAssertEqual(contents(rootfs + "/fresh/file"), "f")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: rootfs + "/link"), "etc/hostname")
        XCTAssertEqual(mode(rootfs + "/bin/tool"), 0o755)
        XCTAssertEqual(mode(rootfs + "/etc/secret"), 0o600)
        if xattrsSupported {
            XCTAssertEqual(XattrCalls.get(rootfs + "/bin/tool", "user.podshim"), "1")
        }
        XCTAssertEqual(try store(rootfs: "alpine-oci:3.19"), rootfs)

        XCTAssertEqual(record.id, fixture.configDigest)
        XCTAssertEqual(record.repoTags, ["alpine-oci:3.19"])
        XCTAssertEqual(record.repoDigests, ["alpine-oci@" + fixture.indexDigest])
        XCTAssertEqual(record.config, Self.expectedConfig)
        XCTAssertEqual(record.created, ISO8601DateFormatter().date(from: "2024-05-06T07:08:09Z"))
        let sizes = ["#!/bin/sh\n", "two\n", "s", "f", "etc/hostname", "new"].map(\.utf8.count).reduce(0, +)
        XCTAssertEqual(record.size, UInt64(sizes))
        XCTAssertEqual(storeEntries(), ["alpine-oci_3.19"], "nothing left of the staging directory")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: storePath + "/alpine-oci_3.19").sorted(),
                       ["image.json", "rootfs"])
    }

    /// `rootfs(for:)` through the store the image-service tests use.
    private func store(rootfs image: String) throws -> String { try images.rootfs(for: image) }

    func testListStatusRemoveAndUsageAgree() throws {
        let fixture = try makeLayout()
        let record = try images.pull(fixture.path + ":3.19")
        XCTAssertEqual(images.list(), [record])
        let hex = String(fixture.configDigest.dropFirst("sha256:".count))
        for reference in ["alpine-oci:3.19", "docker.io/library/alpine-oci:3.19", "docker.io/alpine-oci:3.19",
                          fixture.configDigest, hex, String(hex.prefix(12)), "sha256:" + hex.prefix(20),
                          "alpine-oci@" + fixture.indexDigest, "docker.io/library/alpine-oci@" + fixture.indexDigest] {
            XCTAssertEqual(images.status(reference), record, reference)
        }
        for reference in ["alpine-oci", "alpine-oci:latest", String(hex.prefix(11)), "sha256:", "", "alpine-oci@sha256:1"] {
            XCTAssertNil(images.status(reference), reference)
        }

        var entries = 1  // the store directory itself
        FileTree.walk(storePath) { _, _ in entries += 1 }
        let usage = images.usage()
        XCTAssertEqual(usage.mountpoint, storePath)
        XCTAssertEqual(usage.inodes, UInt64(entries))
        XCTAssertGreaterThanOrEqual(usage.bytes, record.size)

        try images.remove("docker.io/library/alpine-oci:3.19")
        XCTAssertEqual(images.list(), [])
        XCTAssertNil(images.status(fixture.configDigest))
        XCTAssertFalse(FileManager.default.fileExists(atPath: record.rootfs))
        XCTAssertEqual(storeEntries(), [])
        XCTAssertEqual(images.usage().inodes, 2, "the store directory and its lock file")
        XCTAssertLessThan(images.usage().bytes, usage.bytes)
    }

    func testReferenceNamesAndDockerManifests() throws {
        let fixture = try makeLayout()
        XCTAssertEqual(pullError(fixture.path), .ambiguousLayout(layout: fixture.path, available: ["3.19", "other", "foreign"]))
        XCTAssertEqual(pullError(fixture.path + ":nope"),
                       .referenceNotFound(layout: fixture.path, reference: "nope", available: ["3.19", "other", "foreign"]))
        let foreign = pullError("oci:" + fixture.path + ":foreign")
        guard case .noMatchingPlatform(_, let wanted, let available) = foreign else {
            return XCTFail("expected noMatchingPlatform, got \(String(describing: foreign))")
        }
        XCTAssertEqual(wanted, "linux/" + OCILayout.hostArchitecture)
        XCTAssertEqual(available, ["linux/" + Self.otherArchitecture])

        // Docker schema 2 media types; the descriptor in index.json has no mediaType.
        let other = try images.pull("oci:" + fixture.path + ":other")
        XCTAssertEqual(other.repoTags, ["alpine-oci:other"])
        XCTAssertEqual(other.repoDigests, ["alpine-oci@" + fixture.otherManifestDigest])
        XCTAssertEqual(other.id, fixture.configDigest)
        XCTAssertEqual(contents(other.rootfs + "/etc/hostname"), "two\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: other.rootfs + "/data"))

        // One id, two references: one image. untag drops a reference; remove (the CRI's) the image.
        let tagged = try images.pull(fixture.path + ":3.19")
        XCTAssertEqual(images.list().map(\.repoTags), [["alpine-oci:other", "alpine-oci:3.19"]])
        XCTAssertEqual(tagged.rootfs, other.rootfs)
        guard case .untagged(let kept) = try images.untag("alpine-oci:other") else { return XCTFail("expected untagged") }
        XCTAssertEqual(kept.repoTags, ["alpine-oci:3.19"])
        XCTAssertEqual(images.list().map(\.repoTags), [["alpine-oci:3.19"]])
        _ = try images.pull(fixture.path + ":other")
        try images.remove("alpine-oci:other")
        XCTAssertEqual(images.list(), [])
    }

    func testTagAsAndIdempotentPull() throws {
        let fixture = try makeLayout()
        let mine = try images.pull("oci:" + fixture.path + ":3.19", tagAs: "docker.io/library/mine:2")
        XCTAssertEqual(mine.repoTags, ["mine:2"])
        XCTAssertEqual(mine.repoDigests, ["mine@" + fixture.indexDigest])
        XCTAssertEqual(mine.rootfs, storePath + "/mine_2/rootfs")
        XCTAssertEqual(try store(rootfs: "mine:2"), mine.rootfs)
        XCTAssertEqual(try images.pull("oci:" + fixture.path + ":3.19", tagAs: "mine:2"), mine, "same image again")
        XCTAssertEqual(try images.pull("mine:2"), mine, "a name in the store")
        XCTAssertEqual(try images.pull(fixture.configDigest), mine, "an id in the store")
        XCTAssertEqual(pullError(fixture.path + ":3.19", tagAs: "a b"), .invalidName("a b"))
        XCTAssertEqual(pullError(fixture.path + ":3.19", tagAs: "../x"), .invalidName("../x"))
        XCTAssertEqual(images.list(), [mine])
    }

    func testConcurrentPullsOfOneReference() throws {
        let fixture = try makeLayout()
        let results = Mutex<[Result<ImageRecord, ImagePullError>]>([])
        let store = images
        DispatchQueue.concurrentPerform(iterations: 3) { _ in
            let result: Result<ImageRecord, ImagePullError>
            do throws(ImagePullError) {
                result = .success(try store.pull(fixture.path + ":3.19"))
            } catch {
                result = .failure(error)
            }
            results.withLock { $0.append(result) }
        }
        let records = try results.withLock { $0 }.map { try $0.get() }
        XCTAssertEqual(records.count, 3)
        XCTAssertEqual(Set(records.map(\.id)), [fixture.configDigest])
        XCTAssertEqual(images.list(), [records[0]])
        XCTAssertEqual(storeEntries(), ["alpine-oci_3.19"], "losers' staging directories are gone")
        XCTAssertEqual(contents(records[0].rootfs + "/etc/hostname"), "two\n")
    }

    // MARK: Broken layouts

    func testCorruptedBlobIsADigestError() throws {
        let fixture = try makeLayout()
        let original = try Data(contentsOf: URL(fileURLWithPath: fixture.gzipLayerBlob))
        var corrupted = original
        corrupted[corrupted.count / 2] ^= 0xff
        try corrupted.write(to: URL(fileURLWithPath: fixture.gzipLayerBlob))
        let error = pullError(fixture.path + ":3.19")
        let digest = "sha256:" + (fixture.gzipLayerBlob as NSString).lastPathComponent
        XCTAssertEqual(error, .digestMismatch(path: fixture.gzipLayerBlob, expected: digest,
                                              actual: SHA256.hexDigest(of: [UInt8](corrupted))))
        XCTAssertTrue(error?.description.contains("is corrupt") ?? false, error?.description ?? "")

        try (original + Data([0])).write(to: URL(fileURLWithPath: fixture.gzipLayerBlob))
        XCTAssertEqual(pullError(fixture.path + ":3.19"),
                       .sizeMismatch(path: fixture.gzipLayerBlob, expected: Int64(original.count),
                                     actual: UInt64(original.count + 1)))

        try FileManager.default.removeItem(atPath: fixture.gzipLayerBlob)
        XCTAssertEqual(pullError(fixture.path + ":3.19"), .missingBlob(path: fixture.gzipLayerBlob, digest: digest))
        XCTAssertEqual(images.list(), [])
        XCTAssertEqual(storeEntries(), [])
    }

    func testLayerMemberOutsideTheImageIsRejected() throws {
        try write("src/evil/escape", "gotcha")
        try temporary.makeDirectory("src/evil/sub")
        let archive = sources + "/evil.tar"
        try run(["/bin/tar", "-c", "-P", "-f", archive, "-C", sources + "/evil/sub", "../escape"])
        let layout = try makeSingleImageLayout("evil-oci", layers: [(archive, "application/vnd.oci.image.layer.v1.tar")])
        let blob = layout + "/blobs/sha256/" + (try SHA256.hexDigest(ofFile: archive).hex)
        let error = pullError(layout)
        XCTAssertEqual(error, .unsafeMember(layer: blob, member: "../escape"))
        XCTAssertEqual(error?.description,
                       "layer \(blob) contains \"../escape\", a path outside the image (absolute or with ..)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: temporary.path + "/escape"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: storePath + "/escape"))
        XCTAssertEqual(images.list(), [])

        try run(["/bin/tar", "-c", "-P", "-f", sources + "/abs.tar", sources + "/evil/escape"])
        let absolute = try makeSingleImageLayout("abs-oci", layers: [(sources + "/abs.tar", "application/vnd.oci.image.layer.v1.tar")])
        guard case .unsafeMember(_, let member) = pullError(absolute) else { return XCTFail("absolute member accepted") }
        XCTAssertEqual(member, sources + "/evil/escape")
    }

    func testUpperLayersReplaceLowerSymlinksWithoutFollowingThem() throws {
        let outside = try temporary.makeDirectory("outside")
        try symlink("src/s1/abs", to: outside)
        try symlink("src/s1/rel", to: "../../../../outside")
        try write("src/s1/dir2file/x", "x")
        try write("src/s1/file2dir", "f")
        try write("src/s2/abs/file", "in")
        try write("src/s2/rel/file", "in")
        try write("src/s2/dir2file", "now a file")
        try write("src/s2/file2dir/y", "y")
        try run(["/bin/tar", "-c", "-f", sources + "/s1.tar", "-C", sources + "/s1", "abs", "rel", "dir2file", "file2dir"])
        try run(["/bin/tar", "-c", "-f", sources + "/s2.tar", "-C", sources + "/s2", "abs", "rel", "dir2file", "file2dir"])
        let layout = try makeSingleImageLayout("links-oci", layers: [
            (sources + "/s1.tar", "application/vnd.oci.image.layer.v1.tar"),
            (sources + "/s2.tar", "application/vnd.oci.image.layer.v1.tar"),
        ])
        let record = try images.pull(layout)
        XCTAssertEqual(record.repoTags, ["links-oci:latest"])
        XCTAssertEqual(tree(record.rootfs), ["abs", "abs/file", "dir2file", "file2dir", "file2dir/y", "rel", "rel/file"])
        XCTAssertEqual(contents(record.rootfs + "/abs/file"), "in")
        XCTAssertEqual(contents(record.rootfs + "/dir2file"), "now a file")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside), [], "nothing written through a symlink")
    }

    func testUnsupportedLayerMediaType() throws {
        let layers = try makeLayers()
        let layout = try makeSingleImageLayout("zstd-oci", layers: [(layers.plain, "application/vnd.oci.image.layer.v1.tar+zstd")])
        let blob = layout + "/blobs/sha256/" + (try SHA256.hexDigest(ofFile: layers.plain).hex)
        let error = pullError(layout)
        XCTAssertEqual(error, .unsupportedMediaType(path: blob, mediaType: "application/vnd.oci.image.layer.v1.tar+zstd"))
        XCTAssertEqual(error?.description,
                       "\(blob) has media type \"application/vnd.oci.image.layer.v1.tar+zstd\", which podshim cannot use")
    }

    func testBadLayoutFiles() throws {
        let layout = try makeLayoutDirectory("bad-oci")
        XCTAssertEqual(pullError(layout), .malformedDocument(path: layout + "/index.json", detail: "no such file"))
        try write("src/bad-oci/index.json", #"{"schemaVersion":2,"manifests":[]}"#)
        XCTAssertEqual(pullError(layout), .emptyLayout(layout))
        try write("src/bad-oci/index.json", #"{"schemaVersion":2,"manifests":[{"digest":"sha256:../../x","size":1}]}"#)
        XCTAssertEqual(pullError(layout), .unsupportedDigest(path: layout, digest: "sha256:../../x"))
        try write("src/bad-oci/oci-layout", #"{"imageLayoutVersion":"2.0.0"}"#)
        XCTAssertEqual(pullError(layout), .unsupportedLayoutVersion(path: layout, version: "2.0.0"))
        try FileManager.default.removeItem(atPath: layout + "/oci-layout")
        XCTAssertEqual(pullError("oci:" + layout), .notAnOCILayout(layout))
    }

    // MARK: Plain directories

    func testPlainDirectoryImport() throws {
        try write("src/mytool/bin/run", "#!/bin/sh\nexit 0\n", mode: 0o750)
        try write("src/mytool/etc/conf", "k=v\n")
        try symlink("src/mytool/lnk", to: "bin/run")
        let scratch = try temporary.makeDirectory("src/mytool/tmp")
        XCTAssertEqual(chmod(scratch, 0o1777), 0)
        let source = sources + "/mytool"

        let record = try images.pull(source)
        XCTAssertEqual(record.repoTags, ["mytool:latest"])
        XCTAssertEqual(record.repoDigests, [])
        XCTAssertEqual(record.config, ImageConfig())
        XCTAssertEqual(record.rootfs, storePath + "/mytool/rootfs")
        XCTAssertEqual(record.size, UInt64("#!/bin/sh\nexit 0\n".utf8.count + "k=v\n".utf8.count + "bin/run".utf8.count))
        XCTAssertTrue(ImageReference.isSHA256Digest(record.id), record.id)
        XCTAssertEqual(tree(record.rootfs), ["bin", "bin/run", "etc", "etc/conf", "lnk", "tmp"])
        XCTAssertEqual(mode(record.rootfs + "/bin/run"), 0o750)
        XCTAssertEqual(mode(record.rootfs + "/tmp"), 0o1777)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: record.rootfs + "/lnk"), "bin/run")
        XCTAssertEqual(try store(rootfs: "mytool"), record.rootfs)

        XCTAssertEqual(try images.pull(source + "/"), record, "pulling again returns the stored image")
        let other = ImageStore(directory: temporary.path + "/store2")
        XCTAssertEqual(try other.pull(source).id, record.id, "the id depends on the tree, not the store")

        // The id comes from the content: the same tree under another name is the same image.
        let tagged = try images.pull(source, tagAs: "tool:v1")
        XCTAssertEqual(tagged.repoTags, ["mytool:latest", "tool:v1"])
        XCTAssertEqual(tagged.rootfs, record.rootfs)
        XCTAssertEqual(tagged.id, record.id)
        XCTAssertEqual(images.status("tool:v1"), tagged)
        XCTAssertEqual(images.list().map(\.repoTags), [["mytool:latest", "tool:v1"]])

        try write("src/mytool/etc/added", "more")
        guard case .conflict(let name, let existing, _) = pullError(source) else { return XCTFail("changed tree accepted") }
        XCTAssertEqual(name, "mytool:latest")
        XCTAssertEqual(existing, record.id)
    }

    func testPlainDirectoryErrors() throws {
        let file = try write("src/file", "x")
        try temporary.makeDirectory("src/plain")
        XCTAssertEqual(pullError(sources + "/plain:v1"), .referenceOnPlainDirectory(path: sources + "/plain", reference: "v1"))
        XCTAssertEqual(pullError(file), .notADirectory(file))
        XCTAssertEqual(pullError(sources + "/missing"), .notFound(sources + "/missing"))
        XCTAssertEqual(pullError(sources + "/missing:tag"), .notFound(sources + "/missing"))
        XCTAssertEqual(pullError(sources + "/plain", tagAs: "bad name"), .invalidName("bad name"))
        XCTAssertEqual(storeEntries(), [])
    }

    // MARK: References, removal, hand-made images

    func testRemoteReferencesAreNotSupported() {
        for reference in ["docker.io/library/nginx:1.25", "quay.io/x/y", "nginx:latest", "nginx",
                          "localhost:5000/app", "oci:relative/path"] {
            let error = pullError(reference)
            XCTAssertEqual(error, .remoteNotSupported(reference), reference)
        }
        XCTAssertEqual(ImagePullError.remoteNotSupported("nginx").description,
                       "image \"nginx\" is not in the local store, and podshim never contacts a registry: import it first "
                           + "(podshim images import [--image-dir DIR] SRC nginx, SRC a root filesystem directory, an OCI "
                           + "image layout or an OCI image archive), or pull an absolute path (/path/to/rootfs, "
                           + "/path/to/layout[:ref], oci:/path/to/layout[:ref])")
    }

    func testRemoveIsIdempotent() throws {
        XCTAssertNoThrow(try images.remove("nothing"))
        XCTAssertNoThrow(try images.remove("sha256:" + String(repeating: "a", count: 64)))
        try temporary.makeDirectory("store/busybox/rootfs")
        try images.remove("busybox")
        XCTAssertNoThrow(try images.remove("busybox"))
        XCTAssertEqual(images.list(), [])
        XCTAssertEqual(storeEntries(), [])
    }

    func testLeftoversAndStrayDirectories() throws {
        try write("store/.staging-1234/rootfs/bin/x", "x")
        try temporary.makeDirectory("store/.removing-5678/rootfs")
        try write("store/stray/notes", "not an image")
        XCTAssertEqual(images.list(), [])
        XCTAssertEqual(images.usage().inodes, 9)

        // A stray directory is left alone: the image goes beside it, under its name and id prefix.
        try write("src/stray/bin/x", "x")
        let pulled = try images.pull(sources + "/stray")
        let beside = "stray-" + pulled.id.dropFirst("sha256:".count).prefix(12)
        XCTAssertEqual(pulled.rootfs, storePath + "/" + beside + "/rootfs")
        XCTAssertEqual(pulled.repoTags, ["stray:latest"])
        XCTAssertEqual(storeEntries(), [".removing-5678", ".staging-1234", "stray", beside])

        XCTAssertEqual(try images.removeLeftovers(), [storePath + "/.removing-5678", storePath + "/.staging-1234"])
        XCTAssertEqual(storeEntries(), ["stray", beside])
        XCTAssertEqual(try String(contentsOfFile: storePath + "/stray/notes", encoding: .utf8), "not an image")
    }

    func testHandMadeImageDirectoriesAreListed() throws {
        try write("store/busybox/rootfs/bin/busybox", "0123456789")
        try symlink("store/busybox/rootfs/bin/sh", to: "busybox")
        try temporary.makeDirectory("store/busybox_1.36/rootfs")
        try temporary.makeDirectory("store/no-rootfs")
        let busybox = ImageRecord(id: "sha256:" + SHA256.hexDigest(of: "podshim-local:busybox"),
                                  repoTags: ["busybox:latest"], size: 10 + 7, rootfs: storePath + "/busybox/rootfs")
        XCTAssertEqual(ImageStore.localID("busybox"), busybox.id)
        let tagged = try XCTUnwrap(images.list().last)
        XCTAssertEqual(images.list(), [busybox, tagged])
        XCTAssertEqual(tagged.repoTags, ["busybox_1.36:latest"])
        for reference in ["busybox", "busybox:latest", "docker.io/library/busybox:latest", "docker.io/busybox", busybox.id] {
            XCTAssertEqual(images.status(reference), busybox, reference)
        }
        XCTAssertEqual(images.status("busybox:1.36"), tagged, "the store name rootfs(for:) uses")
        XCTAssertEqual(try images.pull("busybox"), busybox)
        XCTAssertEqual(try store(rootfs: "busybox"), busybox.rootfs)

        try write("src/busybox/bin/true", "")
        guard case .conflict = pullError(sources + "/busybox") else { return XCTFail("replaced a hand-made image") }

        try images.remove("docker.io/library/busybox")
        XCTAssertEqual(images.list(), [tagged])
    }

    func testReferenceNormalisation() {
        XCTAssertEqual(ImageReference.normalizedTag("busybox"), "busybox:latest")
        XCTAssertEqual(ImageReference.normalizedTag("docker.io/library/busybox:1.36"), "busybox:1.36")
        XCTAssertEqual(ImageReference.normalizedTag("docker.io/me/app"), "me/app:latest")
        XCTAssertEqual(ImageReference.normalizedTag("localhost:5000/app"), "localhost:5000/app:latest")
        XCTAssertEqual(ImageReference.normalizedTag("docker.io/library/a@sha256:00"), "a@sha256:00")
        XCTAssertTrue(LayerArchive.isSafe("./etc/passwd"))
        XCTAssertTrue(LayerArchive.isSafe("a/..b/c.."))
        XCTAssertFalse(LayerArchive.isSafe("/etc/passwd"))
        XCTAssertFalse(LayerArchive.isSafe("a/../../b"))
        XCTAssertFalse(LayerArchive.isSafe(".."))
    }

    // MARK: SHA-256

    func testSHA256StandardVectors() throws {
        XCTAssertEqual(SHA256.hexDigest(of: ""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256.hexDigest(of: "abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(SHA256.hexDigest(of: "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        let million = [UInt8](repeating: UInt8(ascii: "a"), count: 1_000_000)
        let expected = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        XCTAssertEqual(SHA256.hexDigest(of: million), expected)

        // Fed in uneven pieces, the digest is the same.
        var hasher = SHA256()
        var offset = 0
        for (index, size) in [1, 63, 64, 65, 55, 56, 57, 1000, 4096].cycled(until: million.count).enumerated() {
            _ = index
            let end = min(offset + size, million.count)
            hasher.update(Array(million[offset..<end]))
            offset = end
        }
        XCTAssertEqual(hasher.finalizeHex(), expected)

        // And streamed from a file in 1 MiB reads (a file of more than one chunk).
        let file = temporary.path + "/three-million-a"
        try Data(million + million + million).write(to: URL(fileURLWithPath: file))
        let streamed = try SHA256.hexDigest(ofFile: file)
        XCTAssertEqual(streamed.size, 3_000_000)
        XCTAssertEqual(streamed.hex, SHA256.hexDigest(of: million + million + million))
    }
}

/// setxattr(2) and getxattr(2), which the Glibc module does not export, looked up in libc.
private enum XattrCalls {
    private typealias SetFunction = @convention(c) (
        UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeRawPointer, Int, Int32) -> Int32
    private typealias GetFunction = @convention(c) (
        UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer, Int) -> Int

    /// Sets `name` to `value` on `path`; false when the call is missing or fails (e.g. no xattrs here).
    static func set(_ path: String, _ name: String, _ value: String) -> Bool {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setxattr") else { return false }
        let call = unsafeBitCast(symbol, to: SetFunction.self)
        let bytes = Array(value.utf8)
        return bytes.withUnsafeBytes { call(path, name, $0.baseAddress!, $0.count, 0) } == 0
    }

    /// The value of `name` on `path`, or nil.
    static func get(_ path: String, _ name: String) -> String? {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "getxattr") else { return nil }
        let call = unsafeBitCast(symbol, to: GetFunction.self)
        var buffer = [UInt8](repeating: 0, count: 256)
        let count = buffer.withUnsafeMutableBytes { call(path, name, $0.baseAddress!, $0.count) }
        return count < 0 ? nil : String(decoding: buffer[0..<count], as: UTF8.self)
    }
}

extension Array where Element == Int {
    /// The sizes repeated until they add up to at least `total`.
    fileprivate func cycled(until total: Int) -> [Int] {
        var result: [Int] = []
        var sum = 0
        while sum < total {
            for size in self where sum < total {
                result.append(size)
                sum += size
            }
        }
        return result
    }
}
