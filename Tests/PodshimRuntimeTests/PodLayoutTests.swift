import XCTest
@testable import PodshimRuntime
import PodshimSpec

/// PodLayout: every host path of a pod, computed from the configuration.
final class PodLayoutTests: XCTestCase {
    private let pod = PodSpec(name: "web", namespace: "shop",
                              containers: [ContainerSpec(name: "app", image: "busybox", command: ["true"])])

    private var layout: PodLayout { Fixture.layout(pod, podID: "1234-abcd") }

    func testTopLevelDirectories() {
        XCTAssertEqual(layout.podID, "1234-abcd")
        XCTAssertEqual(layout.stateDirectory, "/run/x/pods/1234-abcd")
        XCTAssertEqual(layout.dataDirectory, "/var/lib/x/pods/1234-abcd")
        XCTAssertEqual(layout.logDirectory, "/var/log/x/shop_web_1234-abcd")
    }

    func testLogDirectoryUsesDefaultNamespace() {
        let plain = PodSpec(name: "db", containers: [ContainerSpec(name: "c", image: "i", command: ["x"])])
        XCTAssertEqual(Fixture.layout(plain, podID: "u").logDirectory, "/var/log/x/default_db_u")
    }

    func testStateFiles() {
        XCTAssertEqual(layout.stateFile, "/run/x/pods/1234-abcd/pod.json")
        XCTAssertEqual(layout.shmDirectory, "/run/x/pods/1234-abcd/shm")
        XCTAssertEqual(layout.etcDirectory, "/run/x/pods/1234-abcd/etc")
    }

    func testVolumeDirectories() {
        XCTAssertEqual(layout.volumesDirectory, "/var/lib/x/pods/1234-abcd/volumes")
        XCTAssertEqual(layout.volumeDirectory("cache"), "/var/lib/x/pods/1234-abcd/volumes/cache")
    }

    func testContainerDirectories() {
        XCTAssertEqual(layout.containerDirectory("app"), "/var/lib/x/pods/1234-abcd/containers/app")
        XCTAssertEqual(layout.upperDirectory("app"), "/var/lib/x/pods/1234-abcd/containers/app/upper")
        XCTAssertEqual(layout.workDirectory("app"), "/var/lib/x/pods/1234-abcd/containers/app/work")
        XCTAssertEqual(layout.rootfsDirectory("app"), "/var/lib/x/pods/1234-abcd/containers/app/rootfs")
    }

    func testLogFiles() {
        XCTAssertEqual(layout.logFile(container: "app", attempt: 0), "/var/log/x/shop_web_1234-abcd/app/0.log")
        XCTAssertEqual(layout.logFile(container: "side", attempt: 3), "/var/log/x/shop_web_1234-abcd/side/3.log")
    }

    func testLayoutsDifferByPodID() {
        let a = Fixture.layout(pod, podID: "a"), b = Fixture.layout(pod, podID: "b")
        XCTAssertNotEqual(a, b)
        XCTAssertNotEqual(a.stateDirectory, b.stateDirectory, "two pods never share state")
        XCTAssertNotEqual(a.dataDirectory, b.dataDirectory, "two pods never share layers or volumes")
    }

    func testConfigurationDefaults() {
        let defaults = RuntimeConfiguration(pauseBinary: "/usr/libexec/podshim/pause")
        XCTAssertEqual(defaults.stateDirectory, "/run/podshim")
        XCTAssertEqual(defaults.rootDirectory, "/var/lib/podshim")
        XCTAssertEqual(defaults.imageDirectory, "/var/lib/podshim/images")
        XCTAssertEqual(defaults.logDirectory, "/var/log/podshim/pods")
        XCTAssertEqual(defaults.pauseBinary, "/usr/libexec/podshim/pause")
    }

    func testImageDirectoryFollowsRootDirectoryUnlessGiven() {
        XCTAssertEqual(Fixture.configuration.imageDirectory, "/var/lib/x/images")
        let explicit = RuntimeConfiguration(rootDirectory: "/r", imageDirectory: "/img", pauseBinary: "/p")
        XCTAssertEqual(explicit.imageDirectory, "/img")
    }
}
