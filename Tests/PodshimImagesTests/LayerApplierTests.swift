import Foundation
import Glibc
@testable import PodshimImages
import PodshimSystem
import XCTest

final class LayerApplierTests: XCTestCase {
    private var sandbox: LayerSandbox!

    override func setUpWithError() throws {
        sandbox = try LayerSandbox()
    }

    override func tearDown() {
        sandbox.remove()
    }

    // MARK: Files, directories, links, nodes

    func testFilesDirectoriesAndLinks() throws {
        var tar = TarBuilder()
        tar.directory("etc/", mode: 0o751, mtime: 1_000_000)
        tar.file("etc/hostname", "node\n", mode: 0o640, mtime: 1_234_567)
        tar.file("etc/passwd", "root:x:0:0::/root:/bin/sh\n", mode: 0o644)
        tar.symlink("etc/mtab", to: "/proc/self/mounts", mtime: 1_111)
        tar.hardLink("etc/hostname2", to: "etc/hostname")
        tar.file("usr/bin/tool", "#!/bin/sh\n", mode: 0o755)  // parents missing from the tar
        tar.directory("empty/", mode: 0o700, mtime: 2_000_000)
        tar.file("/abs/file", "absolute names become relative")
        tar.file("./dot/./file", "dots are dropped")
        tar.file("back/../front", "resolved lexically")
        let bytes = tar.finished()
        let summary = try Layer.apply(bytes, into: sandbox.layer)

        XCTAssertEqual(summary.encoding, .plain)
        XCTAssertEqual(summary.diffID, Layer.sha256(bytes))
        XCTAssertEqual(summary.digest, summary.diffID)
        XCTAssertEqual(summary.entries, 10)
        XCTAssertEqual(summary.uncompressedBytes, UInt64(bytes.count))
        XCTAssertFalse(summary.hasRootEntry)

        XCTAssertEqual(sandbox.contents("etc/hostname"), "node\n")
        let hostname = try XCTUnwrap(sandbox.info("etc/hostname"))
        XCTAssertEqual(hostname.permissions, 0o640)
        XCTAssertEqual(hostname.st_mtim.tv_sec, 1_234_567)
        XCTAssertEqual(hostname.st_nlink, 2)
        XCTAssertEqual(sandbox.info("etc/hostname2")?.st_ino, hostname.st_ino)
        let etc = try XCTUnwrap(sandbox.info("etc"))
        XCTAssertEqual(etc.permissions, 0o751)
        XCTAssertEqual(etc.st_mtim.tv_sec, 1_000_000, "directory times are set after their contents")
        XCTAssertEqual(sandbox.info("empty")?.permissions, 0o700)
        XCTAssertEqual(sandbox.info("empty")?.st_mtim.tv_sec, 2_000_000)
        XCTAssertEqual(sandbox.info("etc/mtab")?.type, S_IFLNK)
        XCTAssertEqual(sandbox.info("etc/mtab")?.st_mtim.tv_sec, 1_111)
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: sandbox.layer + "/etc/mtab"), "/proc/self/mounts")
        XCTAssertEqual(sandbox.info("usr/bin")?.permissions, 0o755, "missing parents are made 0755")
        XCTAssertEqual(sandbox.info("usr/bin/tool")?.permissions, 0o755)
        XCTAssertEqual(sandbox.contents("abs/file"), "absolute names become relative")
        XCTAssertEqual(sandbox.contents("dot/file"), "dots are dropped")
        XCTAssertEqual(sandbox.contents("front"), "resolved lexically")
        XCTAssertNil(sandbox.info("back"), "back/.. is resolved in the name, not on disk")
        sandbox.assertNothingEscaped()
    }

    func testRootEntrySetsTheLayerDirectory() throws {
        var tar = TarBuilder()
        tar.directory("./", mode: 0o711, mtime: 1_500_000_000)
        tar.file("a", "a")
        let summary = try Layer.apply(tar.finished(), into: sandbox.layer)
        XCTAssertTrue(summary.hasRootEntry)
        let root = try XCTUnwrap(sandbox.info(""))
        XCTAssertEqual(root.permissions, 0o711)
        XCTAssertEqual(root.st_mtim.tv_sec, 1_500_000_000)
    }

    func testLaterMembersReplaceEarlierOnes() throws {
        var tar = TarBuilder()
        tar.file("x", "first")
        tar.file("x", "second", mode: 0o600)
        tar.directory("d/", mode: 0o700)
        tar.file("d/inner", "inner")
        tar.directory("d/", mode: 0o755, mtime: 42)  // both directories: metadata only, contents stay
        tar.directory("e/")
        tar.file("e/gone", "gone")
        tar.file("e", "a file replaces the whole directory")
        tar.symlink("s", to: "x")
        tar.file("s", "a file replaces the symbolic link, never writes through it")
        tar.file("hl", "old")
        tar.hardLink("hl", to: "x")
        try Layer.apply(tar.finished(), into: sandbox.layer)
        XCTAssertEqual(sandbox.contents("x"), "second")
        XCTAssertEqual(sandbox.info("x")?.permissions, 0o600)
        XCTAssertEqual(sandbox.contents("d/inner"), "inner")
        XCTAssertEqual(sandbox.info("d")?.permissions, 0o755)
        XCTAssertEqual(sandbox.info("d")?.st_mtim.tv_sec, 42)
        XCTAssertEqual(sandbox.contents("e"), "a file replaces the whole directory")
        XCTAssertEqual(sandbox.info("s")?.type, S_IFREG)
        XCTAssertEqual(sandbox.contents("x"), "second")
        XCTAssertEqual(sandbox.info("hl")?.st_ino, sandbox.info("x")?.st_ino)
    }

    func testNonUTF8Names() throws {
        var tar = TarBuilder()
        tar.add(TarBuilder.Member(name: [UInt8(ascii: "n"), 0xe9, 0xff], data: Array("latin-1".utf8)))
        try Layer.apply(tar.finished(), into: sandbox.layer)
        var info = stat()
        let path = Array(sandbox.layer.utf8) + [UInt8(ascii: "/"), UInt8(ascii: "n"), 0xe9, 0xff, 0]
        XCTAssertEqual(path.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { lstat($0.baseAddress!, &info) } }, 0)
        XCTAssertEqual(info.st_size, 7)
    }

    func testLongNamesThroughPAXAndGNU() throws {
        let deep = (0..<30).map { "directory\($0)" }.joined(separator: "/")
        var tar = TarBuilder()
        tar.file(deep + "/gnu")  // a GNU L record
        tar.add(TarBuilder.Member(name: Array("short".utf8), data: Array("pax".utf8),
                                  pax: [("path", Array((deep + "/pax").utf8))], gnuLongNames: false))
        try Layer.apply(tar.finished(), into: sandbox.layer)
        XCTAssertNotNil(sandbox.info(deep + "/gnu"))
        XCTAssertEqual(sandbox.contents(deep + "/pax"), "pax")
        XCTAssertNil(sandbox.info("short"))
    }

    func testFIFOsWithoutPrivilege() throws {
        var tar = TarBuilder()
        tar.device("run/fifo", type: "6", major: 0, minor: 0, mode: 0o620)
        tar.device("dev/null", type: "3", major: 1, minor: 3)
        tar.file("owned", uid: 4242, gid: 4343, pax: [("SCHILY.xattr.security.capability", [1, 0, 0, 2]),
                                                       ("SCHILY.xattr.trusted.overlay.opaque", Array("y".utf8))])
        let summary = try Layer.apply(tar.finished(), into: sandbox.layer, options: LayerApplier.Options(privileged: false))
        XCTAssertEqual(sandbox.info("run/fifo")?.type, S_IFIFO)
        XCTAssertEqual(sandbox.info("run/fifo")?.permissions, 0o620)
        XCTAssertNil(sandbox.info("dev/null"), "no device nodes without privilege")
        XCTAssertEqual(summary.skippedDevices, 1)
        XCTAssertTrue(summary.notes.contains { $0.contains("dev/null") }, "\(summary.notes)")
        XCTAssertEqual(sandbox.info("owned")?.st_uid, geteuid(), "owners only as root")
        XCTAssertEqual(summary.droppedXattrs, 2, "security.capability needs privilege; trusted.* never")
    }

    func testUserXattrsAndTheOverlayNamespace() throws {
        var tar = TarBuilder()
        tar.file("f", pax: [("SCHILY.xattr.user.mime", Array("text/plain".utf8)),
                            ("SCHILY.xattr.user.overlay.opaque", Array("y".utf8)),
                            ("SCHILY.xattr.system.posix_acl_access", [2, 0, 0, 0])])
        tar.directory("d/", pax: [("SCHILY.xattr.user.dir", Array("yes".utf8))])
        let summary = try Layer.apply(tar.finished(), into: sandbox.layer, options: LayerApplier.Options(privileged: false))
        XCTAssertEqual(sandbox.xattr("f", "user.mime"), "text/plain")
        XCTAssertNil(sandbox.xattr("f", "user.overlay.opaque"), "a layer may not steer overlayfs")
        XCTAssertEqual(sandbox.xattr("d", "user.dir"), "yes")
        XCTAssertEqual(summary.droppedXattrs, 2)
    }

    func testXattrPolicy() {
        XCTAssertTrue(LayerWriter.keepsXattr("user.x", privileged: false))
        XCTAssertFalse(LayerWriter.keepsXattr("user.overlay.redirect", privileged: true))
        XCTAssertFalse(LayerWriter.keepsXattr("trusted.overlay.opaque", privileged: true))
        XCTAssertFalse(LayerWriter.keepsXattr("security.selinux", privileged: true))
        XCTAssertTrue(LayerWriter.keepsXattr("security.capability", privileged: true))
        XCTAssertFalse(LayerWriter.keepsXattr("security.capability", privileged: false))
        XCTAssertFalse(LayerWriter.keepsXattr("user.a\0trusted.overlay.opaque", privileged: true))
    }

    func testCompressedLayers() throws {
        var tar = TarBuilder()
        tar.directory("bin/")
        tar.file("bin/sh", String(repeating: "binary ", count: 10_000), mode: 0o755)
        let bytes = tar.finished()
        for (program, encoding) in [("gzip", LayerEncoding.gzip), ("zstd", .zstd)] {
            let blob = try Layer.compress(bytes, with: program, arguments: program == "zstd" ? ["-q"] : [])
            let directory = try sandbox.makeLayer(program)
            let summary = try LayerApplier.apply(LayerBytesSource(blob), into: directory, expectedDigest: Layer.sha256(blob),
                                                 expectedDiffID: Layer.sha256(bytes))
            XCTAssertEqual(summary.encoding, encoding)
            XCTAssertEqual(summary.compressedBytes, UInt64(blob.count))
            XCTAssertEqual(summary.uncompressedBytes, UInt64(bytes.count))
            XCTAssertEqual(try? String(contentsOfFile: directory + "/bin/sh", encoding: .utf8), String(repeating: "binary ", count: 10_000))
        }
    }

    func testFromAFileDescriptor() throws {
        var tar = TarBuilder()
        tar.file("hello", "world")
        let blob = try Layer.compress(tar.finished(), with: "gzip")
        let path = sandbox.base + "/blob"
        try Data(blob).write(to: URL(fileURLWithPath: path))
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        XCTAssertGreaterThanOrEqual(fd, 0)
        defer { close(fd) }
        let summary = try LayerApplier.apply(blob: fd, path: path, into: sandbox.layer)
        XCTAssertEqual(summary.digest, Layer.sha256(blob))
        XCTAssertEqual(sandbox.contents("hello"), "world")
        sandbox.assertNothingEscaped(layers: ["layer", "blob"])
    }

    func testDirectoryMustBeEmpty() throws {
        XCTAssertTrue(FileManager.default.createFile(atPath: sandbox.layer + "/old", contents: nil))
        var tar = TarBuilder()
        tar.file("a")
        guard case .directoryNotEmpty? = Layer.failure(tar.finished(), into: sandbox.layer) else { return XCTFail() }
    }

    // MARK: As root: owners, devices, capabilities, whiteouts

    func testOwnersModesAndDevicesAsRoot() throws {
        try Layer.requireRoot("chown and mknod")
        var tar = TarBuilder()
        tar.directory("home/user/", mode: 0o700, uid: 1000, gid: 1000)
        tar.file("home/user/setuid", "x", mode: 0o4755, uid: 1000, gid: 50)
        tar.symlink("home/user/link", to: "setuid", uid: 1000, gid: 1001)
        tar.device("dev/null", type: "3", major: 1, minor: 3, mode: 0o666, uid: 0, gid: 5)
        tar.device("dev/loop9", type: "4", major: 7, minor: 9, mode: 0o660, uid: 0, gid: 6)
        tar.device("dev/big", type: "3", major: 300, minor: 70000, mode: 0o600)
        tar.file("bin/ping", "ping", mode: 0o755, pax: [("SCHILY.xattr.security.capability",
                                                         [0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])])
        let summary = try Layer.apply(tar.finished(), into: sandbox.layer)
        XCTAssertEqual(summary.skippedDevices, 0)
        let home = try XCTUnwrap(sandbox.info("home/user"))
        XCTAssertEqual([home.st_uid, home.st_gid], [1000, 1000])
        XCTAssertEqual(home.permissions, 0o700)
        let setuid = try XCTUnwrap(sandbox.info("home/user/setuid"))
        XCTAssertEqual([setuid.st_uid, setuid.st_gid], [1000, 50])
        XCTAssertEqual(setuid.permissions, 0o4755, "the mode is set after the chown, which clears setuid")
        let link = try XCTUnwrap(sandbox.info("home/user/link"))
        XCTAssertEqual([link.st_uid, link.st_gid], [1000, 1001])
        let null = try XCTUnwrap(sandbox.info("dev/null"))
        XCTAssertEqual(null.type, S_IFCHR)
        XCTAssertEqual(null.st_rdev, LayerSyscalls.makeDevice(major: 1, minor: 3))
        XCTAssertEqual(null.permissions, 0o666)
        XCTAssertEqual(null.st_gid, 5)
        XCTAssertEqual(sandbox.info("dev/loop9")?.type, S_IFBLK)
        XCTAssertEqual(sandbox.info("dev/loop9")?.st_rdev, LayerSyscalls.makeDevice(major: 7, minor: 9))
        let big = LayerSyscalls.deviceNumbers(try XCTUnwrap(sandbox.info("dev/big")).st_rdev)
        XCTAssertEqual([big.major, big.minor], [300, 70000])
        XCTAssertNotNil(sandbox.xattr("bin/ping", "security.capability"), "file capabilities kept as root")
    }

    func testWhiteoutsInOverlayForm() throws {
        try Layer.requireRoot("whiteouts (mknod 0/0 with owners) and trusted.* xattrs")
        var tar = TarBuilder()
        tar.directory("etc/")
        tar.file("etc/.wh.motd", uid: 12, gid: 34)  // umoci's explicit whiteout: empty, mode 0
        tar.file(".wh.removed")
        tar.directory("opaque/")
        tar.file("opaque/new", "new")
        tar.file("later/x", "x")
        tar.file("later/.wh..wh..opq")  // after its directory's members: applies all the same
        tar.file("first/.wh..wh..opq")  // before its directory: the directory is made for it
        tar.directory("first/", mode: 0o750)
        tar.file("opaque/.wh..wh..opq")
        tar.file("mine", "this layer's own")
        tar.file(".wh.mine")  // the same layer has it: that hides the lower one already
        tar.file(".wh.redone")
        tar.directory("redone/")  // a directory where a whiteout was: opaque, so no lower child shows
        tar.directory("kept/")
        tar.file(".wh.kept")
        let summary = try Layer.apply(tar.finished(), into: sandbox.layer)
        XCTAssertEqual(summary.entries, 16)

        let motd = try XCTUnwrap(sandbox.info("etc/motd"))
        XCTAssertEqual(motd.type, S_IFCHR)
        XCTAssertEqual(motd.st_rdev, 0)
        XCTAssertEqual([motd.st_uid, motd.st_gid], [12, 34])
        XCTAssertNil(sandbox.info("etc/.wh.motd"))
        XCTAssertEqual(sandbox.info("removed")?.type, S_IFCHR)
        XCTAssertEqual(sandbox.xattr("opaque", "trusted.overlay.opaque"), "y")
        XCTAssertEqual(sandbox.contents("opaque/new"), "new")
        XCTAssertNil(sandbox.info("opaque/.wh..wh..opq"))
        XCTAssertEqual(sandbox.xattr("later", "trusted.overlay.opaque"), "y")
        XCTAssertEqual(sandbox.xattr("first", "trusted.overlay.opaque"), "y")
        XCTAssertEqual(sandbox.info("first")?.permissions, 0o750)
        XCTAssertEqual(sandbox.contents("mine"), "this layer's own")
        XCTAssertEqual(sandbox.info("redone")?.type, S_IFDIR)
        XCTAssertEqual(sandbox.xattr("redone", "trusted.overlay.opaque"), "y")
        XCTAssertEqual(sandbox.xattr("kept", "trusted.overlay.opaque"), "y")
        XCTAssertNil(sandbox.xattr("etc", "trusted.overlay.opaque"))
    }

    func testMemberBelowAWhiteoutOfThisLayer() throws {
        try Layer.requireRoot("trusted.* xattrs")
        var tar = TarBuilder()
        tar.file(".wh.d")
        tar.file("d/x", "x")  // no d/ entry: the whiteout becomes an opaque directory
        try Layer.apply(tar.finished(), into: sandbox.layer)
        XCTAssertEqual(sandbox.info("d")?.type, S_IFDIR)
        XCTAssertEqual(sandbox.info("d")?.permissions, 0o755)
        XCTAssertEqual(sandbox.xattr("d", "trusted.overlay.opaque"), "y")
        XCTAssertEqual(sandbox.contents("d/x"), "x")
    }

    func testUserXattrOpaqueOption() throws {
        var tar = TarBuilder()
        tar.file("d/.wh..wh..opq")
        try Layer.apply(tar.finished(), into: sandbox.layer,
                        options: LayerApplier.Options(privileged: false, opaqueXattr: "user.overlay.opaque"))
        XCTAssertEqual(sandbox.xattr("d", "user.overlay.opaque"), "y")
        XCTAssertNil(sandbox.xattr("d", "trusted.overlay.opaque"))
    }

    func testWhiteoutsWithoutPrivilege() throws {
        // mknod of a 0/0 character device needs no CAP_MKNOD (Linux 5.8); the opaque marker goes
        // in user.overlay.opaque, for overlay mounts with userxattr.
        var tar = TarBuilder()
        tar.file(".wh.gone", uid: 5)
        tar.file("d/.wh..wh..opq")
        try Layer.apply(tar.finished(), into: sandbox.layer,
                        options: LayerApplier.Options(privileged: false, opaqueXattr: "user.overlay.opaque"))
        XCTAssertEqual(sandbox.info("gone")?.type, S_IFCHR)
        XCTAssertEqual(sandbox.info("gone")?.st_rdev, 0)
        XCTAssertEqual(sandbox.info("gone")?.st_uid, geteuid())
        XCTAssertEqual(sandbox.xattr("d", "user.overlay.opaque"), "y")
    }

    func testBadWhiteouts() {
        for (name, words) in [(".wh.", "bare"), ("a/.wh.", "bare"), (".wh..", "\".\" or \"..\""), (".wh...", "\".\" or \"..\""),
                              (".wh.dir/file", "used as a directory")] {
            let sandbox = try! LayerSandbox()
            defer { sandbox.remove() }
            var tar = TarBuilder()
            tar.file(name)
            guard case .unsafeMember(let member, let reason)? = Layer.failure(tar.finished(), into: sandbox.layer) else {
                XCTFail("expected unsafeMember for \(name)")
                continue
            }
            XCTAssertEqual(member, name)
            XCTAssertTrue(reason.contains(words), "\(name): \(reason)")
        }
    }

    // MARK: Names

    func testClean() {
        func clean(_ name: String) -> String? {
            guard case .success(let components) = LayerApplier.clean(Array(name.utf8)) else { return nil }
            return components.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "/")
        }
        XCTAssertEqual(clean("a/b"), "a/b")
        XCTAssertEqual(clean("/a//b/"), "a/b")
        XCTAssertEqual(clean("./"), "")
        XCTAssertEqual(clean("/"), "")
        XCTAssertEqual(clean("a/./b/../c"), "a/c")
        XCTAssertEqual(clean("a/.."), "")
        XCTAssertNil(clean(".."))
        XCTAssertNil(clean("../x"))
        XCTAssertNil(clean("a/../../x"))
        XCTAssertNil(clean("/../x"))
        XCTAssertNil(clean(""))
        XCTAssertNil(clean(String(repeating: "n", count: 256)))
    }
}

/// Archives written by GNU tar (GNU and PAX formats) of a tree made here, applied and compared
/// with the tree: what a real writer produces round-trips.
final class LayerGNUTarTests: XCTestCase {
    func testRoundTripThroughGNUTar() throws {
        guard access("/bin/tar", X_OK) == 0 else { throw XCTSkip("no /bin/tar") }
        let sandbox = try LayerSandbox("source")
        defer { sandbox.remove() }
        let source = sandbox.layer
        let long = (0..<12).map { "long-directory-name-\($0)" }.joined(separator: "/")
        try FileManager.default.createDirectory(atPath: source + "/" + long, withIntermediateDirectories: true)
        try Data("deep".utf8).write(to: URL(fileURLWithPath: source + "/" + long + "/" + String(repeating: "f", count: 150)))
        try FileManager.default.createDirectory(atPath: source + "/bin", withIntermediateDirectories: true)
        try Data(repeating: 0x5a, count: 70_000).write(to: URL(fileURLWithPath: source + "/bin/tool"))
        XCTAssertEqual(chmod(source + "/bin/tool", 0o2751), 0)
        XCTAssertEqual(link(source + "/bin/tool", source + "/bin/tool-link"), 0)
        XCTAssertEqual(symlink("tool", source + "/bin/relative"), 0)
        XCTAssertEqual(symlink("/" + String(repeating: "t", count: 120), source + "/bin/long-target"), 0)
        XCTAssertEqual(mkfifo(source + "/bin/fifo", 0o640), 0)
        XCTAssertEqual(chmod(source + "/bin", 0o750), 0)
        if geteuid() == 0 { XCTAssertEqual(lchown(source + "/bin/relative", 123, 456), 0) }
        var times = [timespec(tv_sec: 1_600_000_000, tv_nsec: 0), timespec(tv_sec: 1_600_000_000, tv_nsec: 0)]
        XCTAssertEqual(utimensat(AT_FDCWD, source + "/bin", &times, 0), 0)

        for format in ["gnu", "pax"] {
            let archive = sandbox.base + "/\(format).tar"
            let tar = Process()
            tar.executableURL = URL(fileURLWithPath: "/bin/tar")
            tar.arguments = ["--format=\(format)", "--numeric-owner", "-C", source, "-cf", archive, "."]
            try tar.run()
            tar.waitUntilExit()
            XCTAssertEqual(tar.terminationStatus, 0)
            let target = try sandbox.makeLayer(format)
            let summary = try LayerApplier.apply(LayerBytesSource([UInt8](try Data(contentsOf: URL(fileURLWithPath: archive)))),
                                                 into: target)
            XCTAssertTrue(summary.hasRootEntry)
            XCTAssertEqual(Self.describe(target), Self.describe(source), format)
        }
    }

    /// Every entry's type, mode, owner, size, whole-second mtime, link target and hard link group.
    static func describe(_ root: String) -> [String] {
        var rootInfo = stat()
        lstat(root, &rootInfo)
        var lines = [". \(String(rootInfo.st_mode, radix: 8)) \(rootInfo.st_uid):\(rootInfo.st_gid) @\(rootInfo.st_mtim.tv_sec)"]
        var inodes: [ino_t: String] = [:]
        FileTree.walk(root) { path, info in
            var line = "\(path) \(String(info.st_mode, radix: 8)) \(info.st_uid):\(info.st_gid)"
            if info.type == S_IFREG {
                line += " \(info.st_size)"
                if info.st_nlink > 1 {
                    line += " linked-with \(inodes[info.st_ino] ?? path)"
                    inodes[info.st_ino] = inodes[info.st_ino] ?? path
                }
            }
            line += " @\(info.st_mtim.tv_sec)"
            if info.type == S_IFLNK { line += " -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: root + "/" + path)) ?? "?") }
            lines.append(line)
        }
        return lines
    }
}
