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
                       + "pull it (podshim images pull missing) or import it (podshim images import SRC missing)")
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
                + "pull it (podshim images pull nginx:1.25) or import it (podshim images import SRC nginx:1.25)"))
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
    /// The config's `rootfs.diff_ids`: the sha256 of each layer's uncompressed tar, lowest first.
    var diffIDs: [String]
    /// The ChainIDs of the image's layers, lowest first: the names of its layer directories.
    var chainIDs: [String]
    /// What the `3.19` image's record counts as its size: its config and compressed layers.
    var size: UInt64
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

    /// Root may set `trusted.overlay.opaque` (opaque directories) and mount overlays; the parts of
    /// the tests that need either are skipped otherwise.
    private static var isRoot: Bool { geteuid() == 0 }

    private static let tarType = "application/vnd.oci.image.layer.v1.tar"
    private static let gzipType = "application/vnd.oci.image.layer.v1.tar+gzip"

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

    /// `sha256:<hex>` of a file's bytes.
    private func sha256(file: String) throws -> String {
        "sha256:" + (try SHA256.hexDigest(ofFile: file).hex)
    }

    /// `file` compressed into `output` by `program` (`gzip -n`: no name or time in the header).
    private func compress(_ file: String, to output: String, with program: String = "gzip -n") throws {
        try run(["/bin/sh", "-c", program + " -c \"$0\" > \"$1\"", file, output])
    }

    /// The DiffID of a layer blob: the sha256 of its tar once decompressed as `mediaType` says.
    private func diffID(ofLayer file: String, mediaType: String) throws -> String {
        let program = mediaType.hasSuffix("gzip") ? "gzip" : mediaType.hasSuffix("zstd") ? "zstd" : nil
        guard let program else { return try sha256(file: file) }
        let tar = file + ".diff-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: tar) }  // a scratch file of the fixture
        try run(["/bin/sh", "-c", program + " -d -c \"$0\" > \"$1\"", file, tar])
        return try sha256(file: tar)
    }

    /// A layer tar of the files given (path → contents), made from `src/<name>/` with its root entry.
    private func makeTar(_ name: String, _ files: [String: String]) throws -> String {
        for (path, text) in files { try write("src/\(name)/\(path)", text) }
        let tar = sources + "/\(name).tar"
        try run(["/bin/tar", "-c", "-f", tar, "-C", sources + "/" + name, "."])
        return tar
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
    /// The opaque markers need root (`trusted.overlay.opaque`): without it the second layer has
    /// opq/new and fresh/file only. `plainGzip` is the first layer's very tar, gzipped: one DiffID.
    private func makeLayers() throws -> (plain: String, gzip: String, plainGzip: String, diffIDs: [String]) {
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
        if Self.isRoot {
            try write("src/l2/opq/.wh..wh..opq", "")
            try write("src/l2/fresh/.wh..wh..opq", "")
        }
        try write("src/l2/opq/new", "new")
        try write("src/l2/fresh/file", "f")
        let plain = sources + "/layer1.tar", upper = sources + "/layer2.tar"
        let gzip = sources + "/layer2.tar.gz", plainGzip = sources + "/layer1.tar.gz"
        try run(["/bin/tar", "-c", "--xattrs", "-f", plain, "-C", sources + "/l1", "."])
        try run(["/bin/tar", "-c", "-f", upper, "-C", sources + "/l2", ".wh.data", "etc", "fresh", "opq"])
        try compress(upper, to: gzip)
        try compress(plain, to: plainGzip)
        return (plain, gzip, plainGzip, [try sha256(file: plain), try sha256(file: upper)])
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
                          workingDir: "/data", user: "1000:1000"),
            rootfs: .init(type: "layers", diffIDs: layers.diffIDs))
        let config = try addJSON(configuration, mediaType: OCIMediaType.imageConfig, to: layout)
        let plain = try addBlob(file: layers.plain, mediaType: Self.tarType, to: layout)
        let gzip = try addBlob(file: layers.gzip, mediaType: Self.gzipType, to: layout)
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
                             gzipLayerBlob: layout + "/blobs/sha256/" + gzip.digest.dropFirst(7),
                             diffIDs: layers.diffIDs, chainIDs: ImageStore.chainIDs(diffIDs: layers.diffIDs),
                             size: UInt64(config.size + plain.size + gzip.size))
    }

    /// A layout `src/<name>` with one image whose layers are the given files; its config's DiffIDs
    /// are `diffIDs`, or computed from the files (decompressed as their media types say).
    private func makeSingleImageLayout(_ name: String, layers: [(file: String, mediaType: String)],
                                       diffIDs: [String]? = nil) throws -> String {
        let layout = try makeLayoutDirectory(name)
        var computed: [String] = []
        if diffIDs == nil {
            for layer in layers { computed.append(try diffID(ofLayer: layer.file, mediaType: layer.mediaType)) }
        }
        let config = try addJSON(OCIImageConfiguration(architecture: OCILayout.hostArchitecture, os: "linux",
                                                       rootfs: .init(type: "layers", diffIDs: diffIDs ?? computed)),
                                 mediaType: OCIMediaType.imageConfig, to: layout)
        var descriptors: [OCIDescriptor] = []
        for layer in layers { descriptors.append(try addBlob(file: layer.file, mediaType: layer.mediaType, to: layout)) }
        let manifest = try addJSON(OCIManifest(schemaVersion: 2, mediaType: OCIMediaType.imageManifest, config: config,
                                               layers: descriptors),
                                   mediaType: OCIMediaType.imageManifest, to: layout)
        try writeIndex(OCIIndex(schemaVersion: 2, mediaType: nil, manifests: [manifest]), layout: layout)
        return layout
    }

    /// `src/app-a` and `src/app-b`: two images of two layers each, the same base layer (`base`)
    /// under different tops.
    private func makeSharedLayouts() throws -> (a: String, b: String, base: String, topA: String, topB: String) {
        let base = try makeTar("base", ["etc/os-release": "base\n", "bin/sh": "sh"])
        let topA = try makeTar("top-a", ["app/a": "A"])
        let topB = try makeTar("top-b", ["app/b": "B"])
        let a = try makeSingleImageLayout("app-a", layers: [(base, Self.tarType), (topA, Self.tarType)])
        let b = try makeSingleImageLayout("app-b", layers: [(base, Self.tarType), (topB, Self.tarType)])
        return (a, b, base, topA, topB)
    }

    // MARK: Layer store helpers

    /// The hex digits of a ChainID: its directory's name in `<store>/.layers`.
    private func hex(_ chainID: String) -> String { String(chainID.dropFirst("sha256:".count)) }

    /// The entries of `<store>/.layers`, sorted.
    private func layerEntries() -> [String] { FileTree.entries(of: storePath + "/.layers") }

    /// `path` as a container of `record` would read it (through the overlay of its layers).
    private func read(_ path: String, in record: ImageRecord) -> String? {
        ImageStore.readImageFile(path, lowerDirectories: record.lowerDirectories)
    }

    private func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// Whether `path` is an overlayfs whiteout: a character device 0/0.
    private func isWhiteout(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFCHR && info.st_rdev == 0
    }

    /// Nothing that an interrupted or failed pull could leave: no staging or removal directory in
    /// the store, no temporary layer in `.layers`, no blob in `.ingest`, no lease.
    private func assertNoLeftovers(_ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
        let stray = storeEntries().filter { $0.hasPrefix(".staging-") || $0.hasPrefix(".removing-") }
            + layerEntries().filter { $0.hasPrefix(".") }
            + FileTree.entries(of: storePath + "/.ingest")
        XCTAssertEqual(stray, [], message, file: file, line: line)
        XCTAssertEqual(images.leases(), [:], "no lease outlives its pull", file: file, line: line)
    }

    /// Runs `body` with the read-only overlay of `lower` (top first) mounted at a fresh directory,
    /// unmounted after. Returns false, running nothing, when not root or overlayfs cannot mount here.
    @discardableResult
    private func withOverlay(_ lower: [String], _ body: (String) throws -> Void) throws -> Bool {
        guard Self.isRoot else { return false }
        var lower = lower
        // Without an upper directory overlayfs wants two lower ones.
        if lower.count == 1 { lower.append(try temporary.makeDirectory("empty-lower-" + UUID().uuidString)) }
        let target = try temporary.makeDirectory("merged-" + UUID().uuidString)
        guard mount("overlay", target, "overlay", UInt(MS_RDONLY), "lowerdir=" + lower.joined(separator: ":")) == 0 else {
            print("note: mount -t overlay failed (\(Errno.last.symbolicName)); the merged view is not checked")
            return false
        }
        defer { _ = umount2(target, Int32(MNT_DETACH)) }  // best effort: tearDown's removal reports the rest
        try body(target)
        return true
    }

    // MARK: podshim images import: references, archives, content ids

    func testImportOfTheThreeSourceKinds() throws {
        // A root filesystem directory, with a default process.
        try write("src/rootfs/bin/sh", "#!/bin/sh\n", mode: 0o755)
        let config = ImageConfig(cmd: ["sh"], env: ["A=1"], workingDir: "/")
        let plain = try images.importImage(from: sources + "/rootfs", as: "registry.example:5000/team/tool:1.0", config: config)
        XCTAssertEqual(plain.repoTags, ["registry.example:5000/team/tool:1.0"])
        XCTAssertEqual(plain.config, config)
        XCTAssertEqual(plain.layers, [], "a directory image is copied, not layered")
        XCTAssertEqual(plain.lowerDirectories, [plain.rootfs])
        XCTAssertEqual(images.status("registry.example:5000/team/tool:1.0"), plain)
        XCTAssertEqual(try images.rootfs(for: "registry.example:5000/team/tool:1.0"), plain.rootfs)
        XCTAssertEqual(try images.rootfs(for: plain.id), plain.rootfs, "an id names the image too")

        // An OCI image layout, and the same layout as a tar archive and as a gzip'd one.
        let fixture = try makeLayout()
        let layout = try images.importImage(from: fixture.path + ":3.19", as: "alpine")
        XCTAssertEqual(layout.id, fixture.configDigest)
        XCTAssertEqual(layout.repoTags, ["alpine:latest"])
        XCTAssertEqual(layout.config.entrypoint, ["/bin/tool"])
        XCTAssertEqual(layout.layers, fixture.chainIDs)
        XCTAssertEqual(layout.directory, storePath + "/alpine")
        let single = try makeSingleImageLayout("single", layers: [(fixture.plainLayerBlob, Self.tarType)])
        try run(["/bin/tar", "-cf", sources + "/single.tar", "-C", single, "."])
        try run(["/bin/sh", "-c", "gzip -c '\(sources)/single.tar' > '\(sources)/single.tar.gz'"])
        let archived = try images.importImage(from: sources + "/single.tar", as: "single:tar")
        let gzipped = try images.importImage(from: sources + "/single.tar.gz", as: "single:gz")
        XCTAssertEqual(archived.id, gzipped.id, "one content, one image")
        XCTAssertEqual(images.status("single:gz")?.repoTags, ["single:tar", "single:gz"])
        // Its one layer is the alpine image's base layer: stored once, for both.
        XCTAssertEqual(archived.layers, [fixture.chainIDs[0]])
        XCTAssertEqual(archived.lowerDirectories, [images.layerDirectory(fixture.chainIDs[0])])
        XCTAssertEqual(layerEntries(), fixture.chainIDs.map(hex).sorted())
        XCTAssertEqual(read("etc/hostname", in: archived), "one\n")
        assertNoLeftovers("nothing unpacked is left behind")

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
        // One directory per layer, named by ChainID (the base layer's is its DiffID), stacked top first.
        let lower = images.layerDirectory(fixture.chainIDs[0]), upper = images.layerDirectory(fixture.chainIDs[1])
        XCTAssertEqual(fixture.chainIDs[0], fixture.diffIDs[0])
        XCTAssertEqual(lower, storePath + "/.layers/" + hex(fixture.diffIDs[0]))
        XCTAssertEqual(record.layers, fixture.chainIDs)
        XCTAssertEqual(record.lowerDirectories, [upper, lower])
        XCTAssertEqual(record.rootfs, upper + ":" + lower, "what overlayfs takes as lowerdir")
        XCTAssertEqual(try store(rootfs: "alpine-oci:3.19"), record.rootfs)
        XCTAssertEqual(layerEntries(), fixture.chainIDs.map(hex).sorted())

        // Each layer as its tar has it, whiteouts in overlay form: character devices 0/0, and
        // opaque directories marked with trusted.overlay.opaque (root only).
        XCTAssertEqual(tree(lower), [
            "bin", "bin/tool", "data", "data/a", "data/b", "etc", "etc/gone", "etc/hostname", "etc/secret", "link",
            "opq", "opq/lower1", "opq/sub", "opq/sub/lower2",
        ])
        XCTAssertEqual(tree(upper), ["data", "etc", "etc/gone", "etc/hostname", "fresh", "fresh/file", "opq", "opq/new"])
        XCTAssertTrue(isWhiteout(upper + "/etc/gone"), "a deleted file's whiteout")
        XCTAssertTrue(isWhiteout(upper + "/data"), "a deleted directory's whiteout")
        XCTAssertFalse(isWhiteout(upper + "/etc/hostname"))
        XCTAssertEqual(contents(lower + "/etc/hostname"), "one\n", "the lower layer keeps its own version")
        XCTAssertEqual(contents(upper + "/etc/hostname"), "two\n")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: lower + "/link"), "etc/hostname")
        XCTAssertEqual(mode(lower + "/bin/tool"), 0o755)
        XCTAssertEqual(mode(lower + "/etc/secret"), 0o600)
        if xattrsSupported {
            XCTAssertEqual(XattrCalls.get(lower + "/bin/tool", "user.podshim"), "1")
        }
        if Self.isRoot {
            XCTAssertEqual(XattrCalls.get(upper + "/opq", "trusted.overlay.opaque"), "y")
            XCTAssertEqual(XattrCalls.get(upper + "/fresh", "trusted.overlay.opaque"), "y")
            XCTAssertNil(XattrCalls.get(upper + "/etc", "trusted.overlay.opaque"), "etc/ merges with the lower etc/")
        }

        // The image as a container sees it.
        XCTAssertEqual(read("etc/hostname", in: record), "two\n")
        XCTAssertNil(read("etc/gone", in: record), "whited out")
        XCTAssertNil(read("data/a", in: record), "below a whited-out directory")
        XCTAssertNil(read("data/b", in: record))
        XCTAssertEqual(read("etc/secret", in: record), "s")
        XCTAssertEqual(read("bin/tool", in: record), "#!/bin/sh\n")
        XCTAssertEqual(read("opq/new", in: record), "new")
        XCTAssertEqual(read("fresh/file", in: record), "f")
        if Self.isRoot {
            XCTAssertNil(read("opq/lower1", in: record), "hidden by the opaque directory")
            XCTAssertNil(read("opq/sub/lower2", in: record))
        } else {
            XCTAssertEqual(read("opq/lower1", in: record), "1", "no opaque marker without root")
        }
        try withOverlay(record.lowerDirectories) { merged in
            XCTAssertEqual(tree(merged), [
                "bin", "bin/tool", "etc", "etc/hostname", "etc/secret", "fresh", "fresh/file", "link", "opq", "opq/new",
            ])
            XCTAssertEqual(contents(merged + "/etc/hostname"), "two\n")
            XCTAssertEqual(contents(merged + "/link"), "two\n", "the link resolves in the merged view")
            XCTAssertEqual(contents(merged + "/opq/new"), "new")
            XCTAssertEqual(mode(merged + "/etc/secret"), 0o600)
        }

        XCTAssertEqual(record.id, fixture.configDigest)
        XCTAssertEqual(record.repoTags, ["alpine-oci:3.19"])
        XCTAssertEqual(record.repoDigests, ["alpine-oci@" + fixture.indexDigest])
        XCTAssertEqual(record.config, Self.expectedConfig)
        XCTAssertEqual(record.created, ISO8601DateFormatter().date(from: "2024-05-06T07:08:09Z"))
        XCTAssertEqual(record.size, fixture.size, "the config and the compressed layers")
        XCTAssertEqual(record.directory, storePath + "/alpine-oci_3.19")
        XCTAssertEqual(storeEntries(), [".layers", ".leases", "alpine-oci_3.19"], "nothing left of the staging directory")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: record.directory), ["image.json"],
                       "a layered image's own directory holds only its record")
        assertNoLeftovers()
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
        let layerBytes = record.lowerDirectories.compactMap { FileSystem.usage(of: $0)?.bytes }.reduce(0, +)
        XCTAssertGreaterThan(layerBytes, 0)
        XCTAssertGreaterThanOrEqual(usage.bytes, layerBytes, "the layers are in the store")

        // Removing the image removes its record; its layers stay until the garbage is collected.
        try images.remove("docker.io/library/alpine-oci:3.19")
        XCTAssertEqual(images.list(), [])
        XCTAssertNil(images.status(fixture.configDigest))
        XCTAssertFalse(exists(record.directory))
        XCTAssertEqual(storeEntries(), [".layers", ".leases"])
        XCTAssertEqual(layerEntries(), fixture.chainIDs.map(self.hex).sorted())
        let collected = try images.collectGarbage(measure: true)
        XCTAssertEqual(Set(collected.removedLayers), Set(fixture.chainIDs))
        XCTAssertEqual(collected.removedLayers.count, 2)
        XCTAssertGreaterThan(collected.freedBytes, 0)
        XCTAssertEqual(layerEntries(), [])
        XCTAssertEqual(images.usage().inodes, 4, "the store directory, its lock file, .layers and .leases")
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

        // Docker schema 2 media types; the descriptor in index.json has no mediaType. Other blobs
        // (both gzipped), the same DiffIDs: the same layers.
        let other = try images.pull("oci:" + fixture.path + ":other")
        XCTAssertEqual(other.repoTags, ["alpine-oci:other"])
        XCTAssertEqual(other.repoDigests, ["alpine-oci@" + fixture.otherManifestDigest])
        XCTAssertEqual(other.id, fixture.configDigest)
        XCTAssertEqual(other.layers, fixture.chainIDs)
        XCTAssertEqual(read("etc/hostname", in: other), "two\n")
        XCTAssertNil(read("data/a", in: other))
        XCTAssertTrue(isWhiteout(images.layerDirectory(fixture.chainIDs[1]) + "/data"))

        // One id, two references: one image. untag drops a reference; remove (the CRI's) the image.
        let tagged = try images.pull(fixture.path + ":3.19")
        XCTAssertEqual(images.list().map(\.repoTags), [["alpine-oci:other", "alpine-oci:3.19"]])
        XCTAssertEqual(tagged.rootfs, other.rootfs)
        XCTAssertEqual(layerEntries(), fixture.chainIDs.map(hex).sorted())
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
        XCTAssertEqual(mine.directory, storePath + "/mine_2")
        XCTAssertEqual(mine.lowerDirectories, fixture.chainIDs.reversed().map(images.layerDirectory))
        XCTAssertEqual(try store(rootfs: "mine:2"), mine.rootfs)
        XCTAssertEqual(try images.pull("oci:" + fixture.path + ":3.19", tagAs: "mine:2"), mine, "same image again")
        XCTAssertEqual(try images.pull("mine:2"), mine, "a name in the store")
        XCTAssertEqual(try images.pull(fixture.configDigest), mine, "an id in the store")
        XCTAssertEqual(pullError(fixture.path + ":3.19", tagAs: "a b"), .invalidName("a b"))
        XCTAssertEqual(pullError(fixture.path + ":3.19", tagAs: "../x"), .invalidName("../x"))
        XCTAssertEqual(images.list(), [mine])
        XCTAssertEqual(layerEntries(), fixture.chainIDs.map(hex).sorted())
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
        XCTAssertEqual(storeEntries(), [".layers", ".leases", "alpine-oci_3.19"], "losers' staging directories are gone")
        XCTAssertEqual(layerEntries(), fixture.chainIDs.map(hex).sorted(), "each layer once, losers' copies gone")
        assertNoLeftovers()
        XCTAssertEqual(read("etc/hostname", in: records[0]), "two\n")
    }

    /// A pull that finishes after another pull of the same image installed it (both found the
    /// image missing when they started) returns that image: no second directory, no second record.
    func testLateInstallOfAStoredImageReturnsIt() throws {
        let fixture = try makeLayout()
        let record = try images.pull(fixture.path + ":3.19")
        let name = try images.storedName(tagAs: nil, layoutPath: fixture.path, reference: "3.19")
        let late = try images.installLayered(name, id: record.id, record: ImageRecord(
            id: record.id, repoTags: [name.repoTag], repoDigests: record.repoDigests, size: record.size,
            config: record.config, rootfs: "", created: record.created, layers: record.layers))
        XCTAssertEqual(late, record)
        XCTAssertEqual(images.list(), [record])
        XCTAssertEqual(storeEntries(), [".layers", ".leases", "alpine-oci_3.19"])
    }

    // MARK: Broken layouts

    func testCorruptedBlobIsADigestError() throws {
        let fixture = try makeLayout()
        let original = try Data(contentsOf: URL(fileURLWithPath: fixture.gzipLayerBlob))
        let digest = "sha256:" + (fixture.gzipLayerBlob as NSString).lastPathComponent

        // A changed gzip header (its time field) still decompresses to the same tar: only the
        // blob's digest tells, checked as the blob streams.
        var retimed = original
        retimed[4] ^= 0x01
        try retimed.write(to: URL(fileURLWithPath: fixture.gzipLayerBlob))
        let error = pullError(fixture.path + ":3.19")
        XCTAssertEqual(error, .layer(blob: digest, .digestMismatch(what: "digest", expected: digest,
                                                                   actual: "sha256:" + SHA256.hexDigest(of: [UInt8](retimed)))))
        XCTAssertEqual(error?.description.hasPrefix("layer \(digest): layer digest is sha256:"), true, error?.description ?? "")

        // Damage inside the compressed stream: refused one way or another, never stored.
        var corrupted = original
        corrupted[corrupted.count / 2] ^= 0xff
        try corrupted.write(to: URL(fileURLWithPath: fixture.gzipLayerBlob))
        guard case .layer(let blob, _) = pullError(fixture.path + ":3.19") else { return XCTFail("corrupt layer accepted") }
        XCTAssertEqual(blob, digest)

        // Checked before a byte is unpacked: the size on disk against the descriptor's.
        try (original + Data([0])).write(to: URL(fileURLWithPath: fixture.gzipLayerBlob))
        XCTAssertEqual(pullError(fixture.path + ":3.19"),
                       .sizeMismatch(path: fixture.gzipLayerBlob, expected: Int64(original.count),
                                     actual: UInt64(original.count + 1)))

        try FileManager.default.removeItem(atPath: fixture.gzipLayerBlob)
        XCTAssertEqual(pullError(fixture.path + ":3.19"), .missingBlob(path: fixture.gzipLayerBlob, digest: digest))
        XCTAssertEqual(images.list(), [])
        // The base layer, unpacked before the top one failed, waits for a retry or the collector.
        XCTAssertEqual(layerEntries(), [hex(fixture.chainIDs[0])])
        assertNoLeftovers()
        XCTAssertEqual(try images.collectGarbage().removedLayers, [fixture.chainIDs[0]])
        XCTAssertEqual(storeEntries(), [".layers", ".leases"])
    }

    func testWrongDiffIDIsRefused() throws {
        let tar = try makeTar("layer", ["etc/hostname": "h\n"])
        let actual = try sha256(file: tar)
        let wrong = "sha256:" + String(repeating: "e", count: 64)
        let layout = try makeSingleImageLayout("diff-oci", layers: [(tar, Self.tarType)], diffIDs: [wrong])
        let error = pullError(layout)
        XCTAssertEqual(error, .layer(blob: actual, .digestMismatch(what: "DiffID", expected: wrong, actual: actual)))
        XCTAssertEqual(error?.description, "layer \(actual): layer DiffID is \(actual), expected \(wrong)")
        XCTAssertEqual(images.list(), [])
        XCTAssertEqual(layerEntries(), [], "nothing of the layer is kept")
        assertNoLeftovers()

        // A config whose DiffIDs do not match the manifest's layers, or are not sha256.
        let short = try makeSingleImageLayout("short-oci", layers: [(tar, Self.tarType)], diffIDs: [])
        guard case .malformedDocument(_, let detail) = pullError(short) else { return XCTFail("DiffIDs missing") }
        XCTAssertEqual(detail, "the config lists 0 DiffIDs for 1 layers in the manifest")
        let md5 = try makeSingleImageLayout("md5-oci", layers: [(tar, Self.tarType)], diffIDs: ["md5:00"])
        guard case .unsupportedDigest(_, let digest) = pullError(md5) else { return XCTFail("md5 DiffID accepted") }
        XCTAssertEqual(digest, "md5:00")
    }

    func testLayerMemberOutsideTheImageIsRejected() throws {
        try write("src/evil/escape", "gotcha")
        try temporary.makeDirectory("src/evil/sub")
        let archive = sources + "/evil.tar"
        try run(["/bin/tar", "-c", "-P", "-f", archive, "-C", sources + "/evil/sub", "../escape"])
        let layout = try makeSingleImageLayout("evil-oci", layers: [(archive, Self.tarType)])
        let digest = try sha256(file: archive)
        let error = pullError(layout)
        guard case .layer(let blob, .unsafeMember(let member, _)) = error else {
            return XCTFail("\"../escape\" accepted: \(String(describing: error))")
        }
        XCTAssertEqual(blob, digest)
        XCTAssertEqual(member, "../escape")
        XCTAssertEqual(error?.description.hasPrefix("layer \(digest): layer member \"../escape\" refused: "), true,
                       error?.description ?? "")
        XCTAssertFalse(exists(temporary.path + "/escape"))
        XCTAssertFalse(exists(storePath + "/escape"))
        XCTAssertFalse(exists(storePath + "/.layers/escape"))
        XCTAssertEqual(images.list(), [])
        XCTAssertEqual(layerEntries(), [])
        assertNoLeftovers()

        // An absolute name is taken relative to the layer's root, as containerd does.
        let absoluteName = sources + "/evil/escape"
        try run(["/bin/tar", "-c", "-P", "-f", sources + "/abs.tar", absoluteName])
        let absolute = try makeSingleImageLayout("abs-oci", layers: [(sources + "/abs.tar", Self.tarType)])
        let record = try images.pull(absolute)
        XCTAssertEqual(read(String(absoluteName.dropFirst()), in: record), "gotcha")
        XCTAssertEqual(contents(record.lowerDirectories[0] + absoluteName), "gotcha")
        XCTAssertEqual(contents(absoluteName), "gotcha")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: sources + "/evil").sorted(), ["escape", "sub"])

        // A symbolic link out of the layer, then a member through it.
        let outside = try temporary.makeDirectory("outside")
        try symlink("src/sym1/a", to: outside)
        try write("src/sym2/a/file", "through the link")
        try run(["/bin/tar", "-c", "-f", sources + "/sym.tar", "-C", sources + "/sym1", "a", "-C", sources + "/sym2", "a/file"])
        let linked = try makeSingleImageLayout("sym-oci", layers: [(sources + "/sym.tar", Self.tarType)])
        guard case .layer(let linkedBlob, .unsafeMember(let linkedMember, _)) = pullError(linked) else {
            return XCTFail("a member below a symbolic link was accepted")
        }
        XCTAssertEqual(linkedBlob, try sha256(file: sources + "/sym.tar"))
        XCTAssertEqual(linkedMember, "a/file")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside), [], "nothing written through the link")
        XCTAssertEqual(images.list().map(\.repoTags), [["abs-oci:latest"]])
        XCTAssertEqual(layerEntries(), record.layers.map(hex))
        assertNoLeftovers()
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
            (sources + "/s1.tar", Self.tarType),
            (sources + "/s2.tar", Self.tarType),
        ])
        let record = try images.pull(layout)
        XCTAssertEqual(record.repoTags, ["links-oci:latest"])
        let (upper, lower) = (record.lowerDirectories[0], record.lowerDirectories[1])
        // Each layer unpacked on its own: the lower keeps its links, the upper has real directories.
        XCTAssertEqual(tree(lower), ["abs", "dir2file", "dir2file/x", "file2dir", "rel"])
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: lower + "/abs"), outside)
        XCTAssertEqual(tree(upper), ["abs", "abs/file", "dir2file", "file2dir", "file2dir/y", "rel", "rel/file"])
        XCTAssertEqual(read("abs/file", in: record), "in")
        XCTAssertEqual(read("rel/file", in: record), "in")
        XCTAssertEqual(read("dir2file", in: record), "now a file")
        XCTAssertNil(read("dir2file/x", in: record), "the upper file hides the lower directory's children")
        XCTAssertEqual(read("file2dir/y", in: record), "y")
        XCTAssertNil(read("file2dir", in: record), "a directory now")
        try withOverlay(record.lowerDirectories) { merged in
            XCTAssertEqual(tree(merged), ["abs", "abs/file", "dir2file", "file2dir", "file2dir/y", "rel", "rel/file"])
            XCTAssertEqual(contents(merged + "/dir2file"), "now a file")
            XCTAssertEqual(contents(merged + "/abs/file"), "in")
        }
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: outside), [], "nothing written through a symlink")
    }

    func testUnsupportedLayerMediaType() throws {
        let layers = try makeLayers()
        let mediaType = "application/vnd.oci.image.layer.v1.tar+bzip2"
        let layout = try makeSingleImageLayout("bzip2-oci", layers: [(layers.plain, mediaType)])
        let blob = layout + "/blobs/sha256/" + (try SHA256.hexDigest(ofFile: layers.plain).hex)
        let error = pullError(layout)
        XCTAssertEqual(error, .unsupportedMediaType(path: blob, mediaType: mediaType))
        XCTAssertEqual(error?.description, "\(blob) has media type \"\(mediaType)\", which podshim cannot use")
        XCTAssertEqual(layerEntries(), [])

        // zstd is one podshim reads (when the zstd program is here to make the fixture).
        guard access("/usr/bin/zstd", X_OK) == 0 || access("/bin/zstd", X_OK) == 0 else { return }
        let zstd = sources + "/layer1.tar.zst"
        try compress(layers.plain, to: zstd, with: "zstd -q")
        let zstdLayout = try makeSingleImageLayout("zstd-oci", layers: [(zstd, "application/vnd.oci.image.layer.v1.tar+zstd")])
        let record = try images.pull(zstdLayout)
        XCTAssertEqual(record.layers, [layers.diffIDs[0]])
        XCTAssertEqual(read("etc/hostname", in: record), "one\n")
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

    func testImageConfigWithoutLayersIsMalformed() throws {
        let tar = try makeTar("layer", ["etc/hostname": "h\n"])
        let layout = try makeLayoutDirectory("norootfs-oci")
        let config = try addJSON(OCIImageConfiguration(architecture: OCILayout.hostArchitecture, os: "linux"),
                                 mediaType: OCIMediaType.imageConfig, to: layout)
        let layer = try addBlob(file: tar, mediaType: Self.tarType, to: layout)
        let manifest = try addJSON(OCIManifest(schemaVersion: 2, mediaType: OCIMediaType.imageManifest, config: config,
                                               layers: [layer]),
                                   mediaType: OCIMediaType.imageManifest, to: layout)
        try writeIndex(OCIIndex(schemaVersion: 2, mediaType: nil, manifests: [manifest]), layout: layout)
        XCTAssertEqual(pullError(layout), .malformedDocument(path: layout + "/blobs/sha256/" + hex(config.digest),
                                                             detail: "the image config has no rootfs of type \"layers\""))
        XCTAssertEqual(images.list(), [])
        XCTAssertEqual(layerEntries(), [])
    }

    // MARK: The layer store

    /// readImageFile against layer directories made by hand, and (as root) against the kernel's
    /// overlay of the same directories.
    func testReadImageFileAsTheOverlayShowsIt() throws {
        let lower = try temporary.makeDirectory("by-hand/lower"), upper = try temporary.makeDirectory("by-hand/upper")
        try write("by-hand/lower/etc/passwd", "root:x:0:0::/root:/bin/sh\n")
        try write("by-hand/lower/etc/group", "root:x:0:\n")
        try write("by-hand/lower/etc/gone", "bye")
        try write("by-hand/lower/opq/old", "old")
        try write("by-hand/lower/dir2file/x", "x")
        try write("by-hand/lower/file2dir", "f")
        try write("by-hand/lower/exact", String(repeating: "e", count: 64))
        try write("by-hand/lower/gone-dir/child", "hidden")
        try symlink("by-hand/lower/host-link", to: "/etc/hostname")
        XCTAssertEqual(mkfifo(lower + "/etc/fifo", 0o644), 0)
        try write("by-hand/upper/etc/passwd", "app:x:1000:1000::/app:/bin/sh\n")
        XCTAssertEqual(mknod(upper + "/etc/gone", S_IFCHR, 0), 0, "a whiteout")
        XCTAssertEqual(mknod(upper + "/gone-dir", S_IFCHR, 0), 0, "a directory's whiteout")
        try write("by-hand/upper/opq/new", "new")
        try write("by-hand/upper/dir2file", "now a file")
        try write("by-hand/upper/file2dir/y", "y")
        // readImageFile honours either opaque marker; the kernel's default one needs root.
        let opaque = XattrCalls.set(upper + "/opq", Self.isRoot ? "trusted.overlay.opaque" : "user.overlay.opaque", "y")
        let layers = [upper, lower]
        func read(_ path: String, limit: Int = 4 << 20) -> String? {
            ImageStore.readImageFile(path, lowerDirectories: layers, limit: limit)
        }

        XCTAssertEqual(read("etc/passwd"), "app:x:1000:1000::/app:/bin/sh\n", "the top layer's version")
        XCTAssertEqual(read("/etc/passwd"), "app:x:1000:1000::/app:/bin/sh\n")
        XCTAssertEqual(read("etc/group"), "root:x:0:\n", "from the layer below")
        XCTAssertNil(read("etc/gone"), "whited out")
        XCTAssertNil(read("gone-dir/child"), "below a whited-out directory")
        XCTAssertEqual(read("dir2file"), "now a file")
        XCTAssertNil(read("dir2file/x"), "below a file of the upper layer")
        XCTAssertEqual(read("file2dir/y"), "y")
        XCTAssertNil(read("file2dir"), "a directory in the upper layer hides the lower file")
        XCTAssertEqual(read("opq/new"), "new")
        if opaque {
            XCTAssertNil(read("opq/old"), "below an opaque directory")
        }
        XCTAssertNil(read("etc/fifo"), "a FIFO is not read, nor waited on")
        XCTAssertNil(read("host-link"), "a link out of the layer is not followed")
        XCTAssertEqual(read("exact", limit: 64), String(repeating: "e", count: 64))
        XCTAssertNil(read("exact", limit: 63), "larger than the limit")
        XCTAssertNil(read("etc"), "a directory")
        XCTAssertNil(read("missing"))
        XCTAssertNil(read(""))
        XCTAssertNil(read("../lower/etc/group"))

        try withOverlay(layers) { merged in
            XCTAssertEqual(contents(merged + "/etc/passwd"), "app:x:1000:1000::/app:/bin/sh\n")
            XCTAssertEqual(contents(merged + "/etc/group"), "root:x:0:\n")
            XCTAssertFalse(exists(merged + "/etc/gone"))
            XCTAssertFalse(exists(merged + "/gone-dir"))
            XCTAssertFalse(exists(merged + "/dir2file/x"))
            XCTAssertEqual(contents(merged + "/dir2file"), "now a file")
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: merged + "/file2dir"), ["y"])
            XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: merged + "/opq"), ["new"])
        }
    }

    func testChainIDsByHand() {
        let a = "sha256:" + String(repeating: "a", count: 64)
        let b = "sha256:" + String(repeating: "b", count: 64)
        let c = "sha256:" + String(repeating: "c", count: 64)
        // Computed with sha256sum: printf '%s' "$a $b" | sha256sum, then the same with that and $c.
        let ab = "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c"
        let abc = "sha256:c1377126441fb2f5ec2c21ae2a60255331d639e830f0ee1b40a36e52d4c40588"
        XCTAssertEqual(ImageStore.chainIDs(diffIDs: []), [])
        XCTAssertEqual(ImageStore.chainIDs(diffIDs: [a]), [a], "the base layer's ChainID is its DiffID")
        XCTAssertEqual(ImageStore.chainIDs(diffIDs: [a, b]), [a, ab])
        XCTAssertEqual(ImageStore.chainIDs(diffIDs: [a, b, c]), [a, ab, abc])
        XCTAssertEqual(ImageStore.chainIDs(diffIDs: [b, a]),
                       [b, "sha256:c6238ae8d91445af4c453ac796a5e6c69f596c950ef3ae7b29faf4f8da3487f1"], "order matters")

        XCTAssertEqual(images.layersDirectory, storePath + "/.layers")
        XCTAssertEqual(images.layerDirectory(ab), storePath + "/.layers/" + hex(ab))
        XCTAssertEqual(images.lowerDirectories(layers: [a, ab, abc]),
                       [images.layerDirectory(abc), images.layerDirectory(ab), images.layerDirectory(a)], "top first")
    }

    func testImagesSharingABaseLayerStoreItOnce() throws {
        let layouts = try makeSharedLayouts()
        let baseDiffID = try sha256(file: layouts.base)
        let a = try images.pull(layouts.a)
        // Layers the store has are not read again: B pulls without the base layer's blob.
        try FileManager.default.removeItem(atPath: layouts.b + "/blobs/sha256/" + hex(baseDiffID))
        let b = try images.pull(layouts.b)

        XCTAssertEqual(a.layers, ImageStore.chainIDs(diffIDs: [baseDiffID, try sha256(file: layouts.topA)]))
        XCTAssertEqual(b.layers, ImageStore.chainIDs(diffIDs: [baseDiffID, try sha256(file: layouts.topB)]))
        XCTAssertEqual(a.layers[0], b.layers[0])
        XCTAssertNotEqual(a.layers[1], b.layers[1])
        XCTAssertEqual(a.lowerDirectories.last, images.layerDirectory(baseDiffID))
        XCTAssertEqual(b.lowerDirectories.last, images.layerDirectory(baseDiffID), "one directory for both")
        XCTAssertEqual(layerEntries().count, 3, "the shared base layer is stored once")
        XCTAssertEqual(layerEntries(), Set(a.layers + b.layers).map(hex).sorted())
        XCTAssertEqual(images.list().map(\.repoTags), [["app-a:latest"], ["app-b:latest"]])

        XCTAssertEqual(read("etc/os-release", in: a), "base\n")
        XCTAssertEqual(read("etc/os-release", in: b), "base\n")
        XCTAssertEqual(read("app/a", in: a), "A")
        XCTAssertNil(read("app/b", in: a))
        XCTAssertEqual(read("app/b", in: b), "B")
        XCTAssertNil(read("app/a", in: b))
        try withOverlay(b.lowerDirectories) { merged in
            XCTAssertEqual(tree(merged), ["app", "app/b", "bin", "bin/sh", "etc", "etc/os-release"])
        }
        assertNoLeftovers()
    }

    func testRemovingAnImageAndCollectingGarbageKeepsSharedLayers() throws {
        let layouts = try makeSharedLayouts()
        let a = try images.pull(layouts.a)
        let b = try images.pull(layouts.b)
        XCTAssertEqual(try images.collectGarbage(), .init(removedLayers: [], freedBytes: 0), "every layer is in use")

        try images.remove("app-a")
        XCTAssertNil(images.status("app-a"))
        XCTAssertFalse(exists(a.directory))
        XCTAssertEqual(layerEntries().count, 3, "removing an image leaves its layers to collectGarbage")

        let collected = try images.collectGarbage(measure: true)
        XCTAssertEqual(collected.removedLayers, [a.layers[1]], "only the layer no other image has")
        XCTAssertGreaterThan(collected.freedBytes, 0)
        XCTAssertEqual(layerEntries(), b.layers.map(hex).sorted())
        XCTAssertEqual(try images.rootfs(for: "app-b"), b.rootfs)
        XCTAssertEqual(read("etc/os-release", in: b), "base\n")
        XCTAssertEqual(read("app/b", in: b), "B")
        XCTAssertEqual(try images.collectGarbage(), .init(removedLayers: [], freedBytes: 0), "nothing more to free")

        // Its last reference gone, B goes too (untag); its layers with the next collection.
        XCTAssertEqual(try images.untag("app-b"), .removed([b]))
        XCTAssertEqual(layerEntries().count, 2)
        XCTAssertEqual(Set(try images.collectGarbage().removedLayers), Set(b.layers))
        XCTAssertEqual(layerEntries(), [])
        XCTAssertEqual(storeEntries(), [".layers", ".leases"])
    }

    func testLeaseKeepsLayersThroughGarbageCollection() throws {
        let layouts = try makeSharedLayouts()
        let a = try images.pull(layouts.a)
        XCTAssertEqual(images.leases(), [:], "a pull's own lease ends with it")
        try images.lease("container-1", layers: a.layers)
        XCTAssertEqual(images.leases(), ["container-1": a.layers])

        try images.remove(a.id)
        XCTAssertEqual(images.list(), [])
        XCTAssertEqual(try images.collectGarbage().removedLayers, [], "leased layers stay")
        XCTAssertEqual(layerEntries(), a.layers.map(hex).sorted())
        XCTAssertEqual(read("app/a", in: a), "A", "a container of the removed image still has its layers")

        // A lease renewed with fewer layers keeps only those.
        try images.lease("container-1", layers: [a.layers[0]])
        XCTAssertEqual(try images.collectGarbage().removedLayers, [a.layers[1]])
        XCTAssertEqual(layerEntries(), [hex(a.layers[0])])

        images.release("container-1")
        images.release("container-1")  // releasing twice is no error
        images.release("../escape")  // not a holder name: nothing
        XCTAssertEqual(images.leases(), [:])
        XCTAssertEqual(try images.collectGarbage().removedLayers, [a.layers[0]])
        XCTAssertEqual(layerEntries(), [])

        for bad in ["", ".hidden", "a/b"] {
            let store = images
            XCTAssertEqual(assertThrows(ImagePullError.self) { try store.lease(bad, layers: []) }, .invalidName(bad), bad)
        }
    }

    func testImportFailingHalfWayLeavesNoPartialLayerOrRecord() throws {
        let base = try makeTar("half-base", ["etc/os-release": "base\n"])
        let middle = try makeTar("half-middle", ["usr/lib/m": "m"])
        // The top layer: a small file, then a big incompressible one that the broken blob cuts short,
        // so its unpacking fails half-way, after it wrote the first file.
        try write("src/half-top/aaa/first", "written before the failure")
        var generator = SystemRandomNumberGenerator()
        let noise = Data((0..<(512 << 10)).map { _ in UInt8.random(in: 0...255, using: &generator) })
        try temporary.makeDirectory("src/half-top/zzz")
        try noise.write(to: URL(fileURLWithPath: sources + "/half-top/zzz/big"))
        let top = sources + "/half-top.tar", topGzip = sources + "/half-top.tar.gz"
        try run(["/bin/tar", "-c", "-f", top, "-C", sources + "/half-top", "aaa", "zzz"])
        try compress(top, to: topGzip)
        let whole = try Data(contentsOf: URL(fileURLWithPath: topGzip))
        let truncated = sources + "/half-top-truncated.tar.gz"
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: truncated))
        let diffIDs = [try sha256(file: base), try sha256(file: middle), try sha256(file: top)]
        let chain = ImageStore.chainIDs(diffIDs: diffIDs)

        let broken = try makeSingleImageLayout("half-broken", layers: [
            (base, Self.tarType), (middle, Self.tarType), (truncated, Self.gzipType),
        ], diffIDs: diffIDs)
        guard case .layer(let blob, _) = pullError(broken, tagAs: "half") else { return XCTFail("a truncated layer was accepted") }
        XCTAssertEqual(blob, try sha256(file: truncated))
        XCTAssertEqual(images.list(), [])
        XCTAssertNil(images.status("half"))
        XCTAssertFalse(exists(storePath + "/half"))
        XCTAssertFalse(exists(images.layerDirectory(chain[2])))
        XCTAssertEqual(layerEntries(), chain.prefix(2).map(hex).sorted(), "the complete layers stay, for a retry or the collector")
        assertNoLeftovers("no half-unpacked layer")

        // The same image with a good top layer blob imports, keeping the two layers stored.
        let fixed = try makeSingleImageLayout("half-fixed", layers: [
            (base, Self.tarType), (middle, Self.tarType), (topGzip, Self.gzipType),
        ], diffIDs: diffIDs)
        let record = try images.pull(fixed, tagAs: "half")
        XCTAssertEqual(record.repoTags, ["half:latest"])
        XCTAssertEqual(record.layers, chain)
        XCTAssertEqual(layerEntries(), chain.map(hex).sorted())
        XCTAssertEqual(read("aaa/first", in: record), "written before the failure")
        XCTAssertEqual(read("usr/lib/m", in: record), "m")
        XCTAssertEqual(read("etc/os-release", in: record), "base\n")
        XCTAssertEqual(FileManager.default.contents(atPath: images.layerDirectory(chain[2]) + "/zzz/big"), noise)
        assertNoLeftovers()
    }

    func testRemoveLeftoversCleansTemporaryLayers() throws {
        let layerHex = String(repeating: "d", count: 64)
        try write("store/.layers/.tmp-1234/etc/half-written", "x")
        XCTAssertEqual(mknod(storePath + "/.layers/.tmp-1234/etc/gone", S_IFCHR, 0), 0, "a whiteout, half-way through")
        XCTAssertEqual(chmod(storePath + "/.layers/.tmp-1234/etc", 0o500), 0)
        try temporary.makeDirectory("store/.layers/.removing-5678/usr")
        try write("store/.layers/\(layerHex)/file", "a committed layer")
        try write("store/.ingest/sha256-abc.partial", "half a blob")
        try write("store/.staging-99/image.json", "{}")
        try images.lease("pull-0000", layers: ["sha256:" + layerHex])
        try images.lease("container-1", layers: ["sha256:" + layerHex])

        XCTAssertEqual(try images.removeLeftovers(), [
            storePath + "/.staging-99",
            storePath + "/.layers/.removing-5678", storePath + "/.layers/.tmp-1234",
            storePath + "/.ingest/sha256-abc.partial",
        ])
        XCTAssertEqual(layerEntries(), [layerHex], "committed layers are not leftovers")
        XCTAssertEqual(contents(storePath + "/.layers/\(layerHex)/file"), "a committed layer")
        XCTAssertEqual(images.leases(), ["container-1": ["sha256:" + layerHex]], "only interrupted pulls' leases end")
        XCTAssertEqual(FileTree.entries(of: storePath + "/.ingest"), [])
        XCTAssertEqual(try images.removeLeftovers(), [], "nothing the second time")
    }

    func testMissingLayerMakesTheImageIncomplete() throws {
        let fixture = try makeLayout()
        let record = try images.pull(fixture.path + ":3.19")
        try LayerApplier.removeLayerDirectory(images.layerDirectory(record.layers[1]))
        let error = resolveError("alpine-oci:3.19", in: images)
        XCTAssertEqual(error, .missingLayer(image: "alpine-oci:3.19", chainID: record.layers[1]))
        XCTAssertEqual(error?.description, "image \"alpine-oci:3.19\" is incomplete: its layer \(record.layers[1]) is not in "
                       + "the layer store; pull the image again")
        XCTAssertEqual(images.status("alpine-oci:3.19"), record, "still listed")

        // As the message says, pulling it again brings the layer back.
        XCTAssertEqual(try images.pull(fixture.path + ":3.19"), record)
        XCTAssertEqual(try images.rootfs(for: "alpine-oci:3.19"), record.rootfs)
        XCTAssertEqual(read("etc/hostname", in: record), "two\n")
        XCTAssertEqual(images.list(), [record])
        assertNoLeftovers()
    }

    func testPodPlannerStacksTheLayersOfAnOCIImage() throws {
        let fixture = try makeLayout()
        let record = try images.pull(fixture.path + ":3.19")
        let configuration = RuntimeConfiguration(stateDirectory: "/run/x", rootDirectory: "/var/lib/x", imageDirectory: storePath,
                                                 logDirectory: "/var/log/x", pauseBinary: "/p")
        let pod = PodSpec(name: "web", containers: [ContainerSpec(name: "a", image: "alpine-oci:3.19")])
        let layout = PodLayout(pod: pod, podID: "u", configuration: configuration)
        let plans = try PodPlanner.plan(pod, layout: layout, configuration: configuration)
        XCTAssertEqual(plans.first?.rootfsMount?.data,
                       "lowerdir=\(record.lowerDirectories.joined(separator: ":")),upperdir=/var/lib/x/pods/u/containers/a/upper,"
                           + "workdir=/var/lib/x/pods/u/containers/a/work")
        XCTAssertEqual(plans.first?.argv, ["/bin/tool", "--serve"])
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
        XCTAssertEqual(record.directory, storePath + "/mytool")
        XCTAssertEqual(record.layers, [])
        XCTAssertEqual(record.lowerDirectories, [record.rootfs])
        XCTAssertEqual(record.size, UInt64("#!/bin/sh\nexit 0\n".utf8.count + "k=v\n".utf8.count + "bin/run".utf8.count))
        XCTAssertTrue(ImageReference.isSHA256Digest(record.id), record.id)
        XCTAssertEqual(tree(record.rootfs), ["bin", "bin/run", "etc", "etc/conf", "lnk", "tmp"])
        XCTAssertEqual(mode(record.rootfs + "/bin/run"), 0o750)
        XCTAssertEqual(mode(record.rootfs + "/tmp"), 0o1777)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: record.rootfs + "/lnk"), "bin/run")
        XCTAssertEqual(read("etc/conf", in: record), "k=v\n")
        XCTAssertEqual(read("lnk", in: record), "#!/bin/sh\nexit 0\n")
        XCTAssertEqual(try store(rootfs: "mytool"), record.rootfs)
        XCTAssertFalse(exists(storePath + "/.layers"), "a directory image uses no layer")

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
        XCTAssertEqual(pulled.directory, storePath + "/" + beside)
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
                                  repoTags: ["busybox:latest"], size: 10 + 7, rootfs: storePath + "/busybox/rootfs",
                                  directory: storePath + "/busybox")
        XCTAssertEqual(ImageStore.localID("busybox"), busybox.id)
        let tagged = try XCTUnwrap(images.list().last)
        XCTAssertEqual(images.list(), [busybox, tagged])
        XCTAssertEqual(tagged.repoTags, ["busybox_1.36:latest"])
        XCTAssertEqual(tagged.directory, storePath + "/busybox_1.36")
        for reference in ["busybox", "busybox:latest", "docker.io/library/busybox:latest", "docker.io/busybox", busybox.id] {
            XCTAssertEqual(images.status(reference), busybox, reference)
        }
        XCTAssertEqual(images.status("busybox:1.36"), tagged, "the store name rootfs(for:) uses")
        XCTAssertEqual(try images.pull("busybox"), busybox)
        XCTAssertEqual(try store(rootfs: "busybox"), busybox.rootfs)
        XCTAssertEqual(read("bin/sh", in: busybox), "0123456789", "read through its link, inside the image")

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
