import XCTest
@testable import PodshimRuntime
import PodshimSpec

/// ImageStore: image references → root filesystem directories; PodPlanner's image errors.
final class ImageStoreTests: XCTestCase {
    private var temporary: TemporaryDirectory!
    private var store: ImageStore!

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
                       "image \"missing\" not found (no directory \(temporary.path)/missing/rootfs)")
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
        for name in ["../x", "a/b", "", ".hidden", "..", ":latest", "busy box", "bad$name", "./x", "ñ"] {
            XCTAssertEqual(resolveError(name), .invalidName(name), "name \(name.debugDescription)")
        }
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
            message: "image \"nginx:1.25\" not found (no directory \(temporary.path)/nginx_1.25/rootfs)"))
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
