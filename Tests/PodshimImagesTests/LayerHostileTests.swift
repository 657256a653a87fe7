import Foundation
import Glibc
@testable import PodshimImages
import PodshimSystem
import XCTest

/// Archives built to escape the layer directory, or to break the reader: each is refused (or
/// contained) with an error naming the member, and nothing beside the layer changes.
final class LayerHostileTests: XCTestCase {
    private var sandbox: LayerSandbox!

    override func setUpWithError() throws {
        sandbox = try LayerSandbox()
    }

    override func tearDown() {
        sandbox.remove()
    }

    /// Applies `tar` into a fresh sandbox (or `into`) and returns its error, then checks the
    /// canary and what is beside the layer.
    private func refuse(_ tar: TarBuilder, into given: LayerSandbox? = nil,
                        file: StaticString = #filePath, line: UInt = #line) -> LayerError? {
        guard let sandbox = given ?? (try? LayerSandbox()) else {
            XCTFail("no sandbox", file: file, line: line)
            return nil
        }
        defer { if given == nil { sandbox.remove() } }
        let error = Layer.failure(tar.finished(), into: sandbox.layer, file: file, line: line)
        sandbox.assertNothingEscaped(file: file, line: line)
        return error
    }

    private func assertUnsafe(_ error: LayerError?, member: String, reason words: String,
                              file: StaticString = #filePath, line: UInt = #line) {
        guard case .unsafeMember(let got, let reason)? = error else {
            return XCTFail("expected unsafeMember, got \(String(describing: error))", file: file, line: line)
        }
        XCTAssertEqual(got, member, file: file, line: line)
        XCTAssertTrue(reason.contains(words), reason, file: file, line: line)
        XCTAssertTrue(error!.description.contains("\"\(member)\""), error!.description, file: file, line: line)
    }

    func testDotDotOutOfTheRoot() {
        var tar = TarBuilder()
        tar.file("../canary", "overwritten")
        assertUnsafe(refuse(tar), member: "../canary", reason: "leads out of the layer directory")
        var deeper = TarBuilder()
        deeper.file("a/../../canary", "overwritten")
        assertUnsafe(refuse(deeper), member: "a/../../canary", reason: "leads out")
        var absolute = TarBuilder()
        absolute.file("/../../../../../canary", "overwritten")
        assertUnsafe(refuse(absolute), member: "/../../../../../canary", reason: "leads out")
    }

    func testSymbolicLinkToRootThenWriteThroughIt() {
        var tar = TarBuilder()
        tar.symlink("a", to: "/")
        tar.file("a" + sandbox.canary, "overwritten")  // a/tmp/podshim-layer-…/canary
        assertUnsafe(refuse(tar, into: sandbox), member: "a" + sandbox.canary, reason: "\"a\" on its path is a symbolic link")
        XCTAssertEqual(sandbox.info("a")?.type, S_IFLNK, "the link itself is in the layer, harmless")
    }

    func testSymbolicLinkToEtcThenPasswd() throws {
        var tar = TarBuilder()
        tar.symlink("etc", to: "/etc")
        tar.file("etc/passwd", "evil::0:0::/:/bin/sh\n")
        let before = try String(contentsOfFile: "/etc/passwd", encoding: .utf8)
        assertUnsafe(refuse(tar), member: "etc/passwd", reason: "symbolic link")
        XCTAssertEqual(try String(contentsOfFile: "/etc/passwd", encoding: .utf8), before)
    }

    func testRelativeSymbolicLinkOutThenWrite() {
        var tar = TarBuilder()
        tar.symlink("up", to: "..")
        tar.file("up/canary", "overwritten")
        assertUnsafe(refuse(tar), member: "up/canary", reason: "symbolic link")
        var nested = TarBuilder()
        nested.directory("d/")
        nested.symlink("d/up", to: "../..")
        nested.directory("d/up/escaped/")
        assertUnsafe(refuse(nested), member: "d/up/escaped/", reason: "symbolic link")
    }

    func testSymbolicLinkSwappedForADirectoryAfterItsUse() throws {
        // A link replaced by a directory of the same name is a plain directory from then on.
        var tar = TarBuilder()
        tar.symlink("x", to: "/")
        tar.directory("x/")
        tar.file("x/inside", "contained")
        try Layer.apply(tar.finished(), into: sandbox.layer)
        XCTAssertEqual(sandbox.info("x")?.type, S_IFDIR)
        XCTAssertEqual(sandbox.contents("x/inside"), "contained")
        sandbox.assertNothingEscaped()
    }

    func testHardLinkToEtcPasswd() {
        var tar = TarBuilder()
        tar.hardLink("passwd", to: "/etc/passwd")  // resolved in the layer: etc/passwd is not there
        assertUnsafe(refuse(tar, into: sandbox), member: "passwd", reason: "\"/etc/passwd\" is not in this layer")
        XCTAssertNil(sandbox.info("passwd"))
    }

    func testHardLinkOutside() {
        var tar = TarBuilder()
        tar.hardLink("stolen", to: "../canary")
        assertUnsafe(refuse(tar), member: "stolen", reason: "leads out of the layer directory")
        var viaLink = TarBuilder()
        viaLink.symlink("out", to: sandbox.base)
        viaLink.hardLink("stolen", to: "out/canary")
        assertUnsafe(refuse(viaLink, into: sandbox), member: "stolen", reason: "symbolic link")
    }

    func testHardLinkToASymbolicLinkLinksTheLinkItself() throws {
        var tar = TarBuilder()
        tar.symlink("s", to: sandbox.canary)
        tar.hardLink("h", to: "s")
        try Layer.apply(tar.finished(), into: sandbox.layer)
        XCTAssertEqual(sandbox.info("h")?.type, S_IFLNK)
        XCTAssertEqual(sandbox.info("h")?.st_ino, sandbox.info("s")?.st_ino)
        sandbox.assertNothingEscaped()
    }

    func testHardLinkToItselfOrTheRoot() {
        var tar = TarBuilder()
        tar.file("f", "x")
        tar.hardLink("f", to: "f")
        assertUnsafe(refuse(tar), member: "f", reason: "itself")
        var root = TarBuilder()
        root.hardLink("r", to: "./")
        assertUnsafe(refuse(root), member: "r", reason: "layer root")
    }

    func testDeviceNamedDotDot() {
        var tar = TarBuilder()
        tar.device("..", type: "3", major: 1, minor: 3)
        assertUnsafe(refuse(tar), member: "..", reason: "leads out")
        var dot = TarBuilder()
        dot.device("a/..", type: "4", major: 8, minor: 0)
        assertUnsafe(refuse(dot), member: "a/..", reason: "non-directory")
    }

    func testMemberBelowAFile() {
        var tar = TarBuilder()
        tar.file("f", "x")
        tar.file("f/g", "y")
        assertUnsafe(refuse(tar), member: "f/g", reason: "not a directory")
    }

    func testGiantPAXRecord() {
        var tar = TarBuilder()
        tar.file("f", pax: [("SCHILY.xattr.user.big", [UInt8](repeating: 0x41, count: 2 << 20))])
        guard case .limitExceeded(_, let detail)? = refuse(tar) else { return XCTFail("expected limitExceeded") }
        XCTAssertTrue(detail.contains("PAX header"), detail)
    }

    func testTruncatedArchive() throws {
        var tar = TarBuilder()
        tar.file("a", String(repeating: "a", count: 2000))
        tar.file("b", "b")
        let bytes = tar.finished()
        for cut in [100, 1000, 2600, bytes.count - 1024] {
            let sandbox = try LayerSandbox()
            defer { sandbox.remove() }
            guard case .malformedArchive? = Layer.failure(Array(bytes.prefix(cut)), into: sandbox.layer) else {
                XCTFail("cut at \(cut): expected malformedArchive")
                continue
            }
            sandbox.assertNothingEscaped()
        }
        let gzip = try Layer.compress(bytes, with: "gzip")
        guard case .corruptStream(.gzip, _)? = Layer.failure(Array(gzip.prefix(gzip.count / 2)), into: sandbox.layer) else {
            return XCTFail("expected corruptStream")
        }
    }

    func testWrongDiffID() throws {
        var tar = TarBuilder()
        tar.file("a", "a")
        let wrong = "sha256:" + String(repeating: "0", count: 64)
        do {
            try Layer.apply(tar.finished(), into: sandbox.layer, expectedDiffID: wrong)
            XCTFail("a wrong DiffID was accepted")
        } catch {
            guard case .digestMismatch("DiffID", wrong, let actual) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(actual, Layer.sha256(tar.finished()))
            XCTAssertTrue(error.description.contains("DiffID"), error.description)
        }
        sandbox.assertNothingEscaped()
    }

    func testOutOfRangeOwner() {
        var tar = TarBuilder()
        tar.file("f", pax: [("uid", Array("4294967295".utf8))])  // (uid_t)-1: chown would leave the owner
        guard case .unsupportedMember("f", let reason)? = refuse(tar) else { return XCTFail("expected unsupportedMember") }
        XCTAssertTrue(reason.contains("uid 4294967295"), reason)
    }

    func testNotATarAtAll() {
        let garbage = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 7919 &+ 13) }
        guard case .malformedArchive? = Layer.failure(garbage, into: sandbox.layer) else { return XCTFail("expected malformedArchive") }
        sandbox.assertNothingEscaped()
    }

    func testTooManyMembersAndBytes() {
        var tar = TarBuilder()
        for index in 0..<5 { tar.file("f\(index)", String(repeating: "x", count: 1000)) }
        guard case .limitExceeded("f3", _)? = Layer.failure(tar.finished(), into: sandbox.layer,
                                                            options: LayerApplier.Options(maxEntries: 3)) else {
            return XCTFail("expected limitExceeded")
        }
        let other = try! sandbox.makeLayer("other")
        guard case .limitExceeded(nil, _)? = Layer.failure(tar.finished(), into: other,
                                                           options: LayerApplier.Options(maxUncompressedBytes: 3000)) else {
            return XCTFail("expected limitExceeded")
        }
    }
}
