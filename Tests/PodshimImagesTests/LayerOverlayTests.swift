import Foundation
import Glibc
@testable import PodshimImages
import PodshimSystem
import XCTest

/// Two applied layers stacked in a real overlayfs mount (root only): whiteouts and opaque
/// directories must hide what the lower layer has, exactly as image-spec layer.md says.
final class LayerOverlayTests: XCTestCase {
    private var sandbox: LayerSandbox!
    private var mountPoint: String?

    override func setUpWithError() throws {
        try Layer.requireRoot("an overlay mount, whiteouts and trusted.* xattrs")
        sandbox = try LayerSandbox("bottom")
    }

    override func tearDown() {
        if let mountPoint { _ = umount2(mountPoint, Int32(MNT_DETACH)) }  // best effort; removal below reports the rest
        sandbox?.remove()
    }

    private func mountOverlay(lower: [String]) throws -> String {
        let target = try sandbox.makeLayer("merged")
        let options = "lowerdir=" + lower.joined(separator: ":")
        guard mount("overlay", target, "overlay", UInt(MS_RDONLY), options) == 0 else {
            throw XCTSkip("mount -t overlay failed: \(Errno.last.symbolicName) (no overlayfs here?)")
        }
        mountPoint = target
        return target
    }

    private func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    func testWhiteoutsAndOpaqueDirectoriesHideLowerContent() throws {
        var bottom = TarBuilder()
        bottom.directory("etc/")
        bottom.file("etc/motd", "hello")
        bottom.file("etc/hostname", "bottom")
        bottom.file("gone", "to be whited out")
        bottom.directory("cache/")
        bottom.file("cache/old1", "old")
        bottom.file("cache/old2", "old")
        bottom.directory("merged-dir/")
        bottom.file("merged-dir/lower", "lower")
        bottom.directory("replaced/")
        bottom.file("replaced/lower-child", "must not show through")
        bottom.file("implied/lower-child", "must not show through")
        try Layer.apply(bottom.finished(), into: sandbox.layer)

        var top = TarBuilder()
        top.file("etc/.wh.motd")
        top.file("etc/hostname", "top")
        top.file(".wh.gone")
        top.file("cache/new", "new")
        top.file("cache/.wh..wh..opq")  // after the directory's own member: still hides every lower child
        top.file("merged-dir/upper", "upper")
        top.file(".wh.replaced")
        top.directory("replaced/")  // a new directory in the whiteout's place
        top.file("replaced/top-child", "top")
        top.file(".wh.implied")
        top.file("implied/top-child", "top")  // no implied/ entry
        let topLayer = try sandbox.makeLayer("top")
        try Layer.apply(top.finished(), into: topLayer)

        let merged = try mountOverlay(lower: [topLayer, sandbox.layer])  // leftmost is the top
        XCTAssertFalse(exists(merged + "/etc/motd"), "whited out")
        XCTAssertEqual(try String(contentsOfFile: merged + "/etc/hostname", encoding: .utf8), "top")
        XCTAssertFalse(exists(merged + "/gone"))
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: merged + "/cache")), ["new"], "opaque")
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: merged + "/merged-dir")), ["lower", "upper"])
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: merged + "/replaced")), ["top-child"])
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: merged + "/implied")), ["top-child"])
        XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: merged)),
                       ["etc", "cache", "merged-dir", "replaced", "implied"])
        sandbox.assertNothingEscaped(layers: ["bottom", "top", "merged"])
    }
}
