import Foundation
import Glibc
@testable import PodshimImages
import PodshimSystem
import XCTest

/// Builds tar archives byte by byte, so that tests can write what no tar program would: names
/// with `..`, members below symbolic links, broken checksums, giant PAX records.
struct TarBuilder {
    private(set) var bytes: [UInt8] = []
    /// Seconds since the epoch given to members that do not say.
    static let defaultTime = 1_700_000_000

    struct Member {
        var name: [UInt8]
        var type: UInt8 = UInt8(ascii: "0")
        var mode: Int = 0o644
        var uid: Int = 0
        var gid: Int = 0
        var mtime: Int = TarBuilder.defaultTime
        var data: [UInt8] = []
        var link: [UInt8] = []
        var major: Int = 0
        var minor: Int = 0
        /// PAX records written in an `x` header before the member.
        var pax: [(String, [UInt8])] = []
        /// Write names longer than 100 bytes as GNU `L`/`K` records (else they must go in `pax`).
        var gnuLongNames = true
    }

    mutating func add(_ member: Member) {
        var member = member
        if !member.pax.isEmpty {
            appendHeader(name: Array("PaxHeaders/x".utf8), type: UInt8(ascii: "x"), mode: 0o644, uid: 0, gid: 0,
                         size: 0, mtime: 0, link: [], major: 0, minor: 0, data: Self.paxRecords(member.pax))
        }
        if member.name.count > 100 && member.gnuLongNames {
            appendHeader(name: Array("././@LongLink".utf8), type: UInt8(ascii: "L"), mode: 0, uid: 0, gid: 0, size: 0,
                         mtime: 0, link: [], major: 0, minor: 0, data: member.name + [0])
            member.name = Array(member.name.prefix(100))
        }
        if member.link.count > 100 && member.gnuLongNames {
            appendHeader(name: Array("././@LongLink".utf8), type: UInt8(ascii: "K"), mode: 0, uid: 0, gid: 0, size: 0,
                         mtime: 0, link: [], major: 0, minor: 0, data: member.link + [0])
            member.link = Array(member.link.prefix(100))
        }
        appendHeader(name: Array(member.name.prefix(100)), type: member.type, mode: member.mode, uid: member.uid,
                     gid: member.gid, size: member.data.count, mtime: member.mtime, link: Array(member.link.prefix(100)),
                     major: member.major, minor: member.minor, data: member.data)
    }

    mutating func file(_ name: String, _ contents: String = "", mode: Int = 0o644, uid: Int = 0, gid: Int = 0,
                       mtime: Int = defaultTime, pax: [(String, [UInt8])] = []) {
        add(Member(name: Array(name.utf8), mode: mode, uid: uid, gid: gid, mtime: mtime, data: Array(contents.utf8), pax: pax))
    }

    mutating func directory(_ name: String, mode: Int = 0o755, uid: Int = 0, gid: Int = 0, mtime: Int = defaultTime,
                            pax: [(String, [UInt8])] = []) {
        add(Member(name: Array(name.utf8), type: UInt8(ascii: "5"), mode: mode, uid: uid, gid: gid, mtime: mtime, pax: pax))
    }

    mutating func symlink(_ name: String, to target: String, uid: Int = 0, gid: Int = 0, mtime: Int = defaultTime) {
        add(Member(name: Array(name.utf8), type: UInt8(ascii: "2"), mode: 0o777, uid: uid, gid: gid, mtime: mtime,
                   link: Array(target.utf8)))
    }

    mutating func hardLink(_ name: String, to target: String) {
        add(Member(name: Array(name.utf8), type: UInt8(ascii: "1"), link: Array(target.utf8)))
    }

    mutating func device(_ name: String, type: Character, major: Int, minor: Int, mode: Int = 0o666, uid: Int = 0, gid: Int = 0) {
        add(Member(name: Array(name.utf8), type: UInt8(ascii: type.unicodeScalars.first!), mode: mode, uid: uid, gid: gid,
                   major: major, minor: minor))
    }

    /// The two zero blocks that end an archive.
    mutating func end() {
        bytes += [UInt8](repeating: 0, count: 1024)
    }

    /// The archive with its end blocks.
    func finished() -> [UInt8] {
        var copy = self
        copy.end()
        return copy.bytes
    }

    /// `LENGTH KEY=VALUE\n` records, LENGTH counting itself.
    static func paxRecords(_ records: [(String, [UInt8])]) -> [UInt8] {
        var out: [UInt8] = []
        for (key, value) in records {
            let body = 1 + key.utf8.count + 1 + value.count + 1
            var length = body + String(body).count
            if String(length).count != String(body).count { length = body + String(length).count }
            out += Array("\(length) \(key)=".utf8) + value + [UInt8(ascii: "\n")]
        }
        return out
    }

    mutating func appendHeader(name: [UInt8], type: UInt8, mode: Int, uid: Int, gid: Int, size: Int, mtime: Int,
                               link: [UInt8], major: Int, minor: Int, data: [UInt8]) {
        var header = [UInt8](repeating: 0, count: 512)
        func put(_ value: [UInt8], at offset: Int) {
            for (index, byte) in value.enumerated() { header[offset + index] = byte }
        }
        func octal(_ value: Int, width: Int) -> [UInt8] {
            let digits = String(value, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(name, at: 0)
        put(octal(mode, width: 8), at: 100)
        put(octal(uid, width: 8), at: 108)
        put(octal(gid, width: 8), at: 116)
        put(octal(data.count, width: 12), at: 124)
        put(octal(mtime, width: 12), at: 136)
        header[156] = type
        put(link, at: 157)
        put(Array("ustar\0".utf8), at: 257)
        put(Array("00".utf8), at: 263)
        put(octal(major, width: 8), at: 329)
        put(octal(minor, width: 8), at: 337)
        put(Array(repeating: UInt8(ascii: " "), count: 8), at: 148)
        let sum = header.reduce(0) { $0 + Int($1) }
        put(Array(String(format: "%06o", sum).utf8) + [0, UInt8(ascii: " ")], at: 148)
        bytes += header
        bytes += data
        bytes += [UInt8](repeating: 0, count: (512 - data.count % 512) % 512)
    }
}

/// A temporary directory holding a `layer` directory to apply into and a `canary` file beside it
/// that no layer may touch. `remove()` deletes it all.
final class LayerSandbox {
    let base: String
    let layer: String
    let canary: String
    static let canaryText = "canary: must never change\n"
    private var canaryInfo = stat()

    init(_ name: String = "layer") throws {
        base = FileManager.default.temporaryDirectory.path + "/podshim-layer-\(UUID().uuidString)"
        layer = base + "/" + name
        canary = base + "/canary"
        try FileManager.default.createDirectory(atPath: layer, withIntermediateDirectories: true)
        XCTAssertTrue(FileManager.default.createFile(atPath: canary, contents: Data(Self.canaryText.utf8)))
        XCTAssertEqual(lstat(canary, &canaryInfo), 0)
    }

    /// A second empty layer directory beside the first.
    func makeLayer(_ name: String) throws -> String {
        let path = base + "/" + name
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    func remove() {
        try? LayerApplier.removeLayerDirectory(base)  // a test's clean-up: a leftover temp dir is no failure
    }

    /// Fails the test when anything beside the layer directories changed.
    func assertNothingEscaped(layers: Set<String> = ["layer"], file: StaticString = #filePath, line: UInt = #line) {
        let names = Set(FileTree.entries(of: base))
        XCTAssertEqual(names, layers.union(["canary"]), "entries beside the layer", file: file, line: line)
        var now = stat()
        XCTAssertEqual(lstat(canary, &now), 0, file: file, line: line)
        XCTAssertEqual(now.st_ino, canaryInfo.st_ino, file: file, line: line)
        XCTAssertEqual(now.st_mode, canaryInfo.st_mode, file: file, line: line)
        XCTAssertEqual(now.st_uid, canaryInfo.st_uid, file: file, line: line)
        XCTAssertEqual(now.st_nlink, 1, "the canary gained a hard link", file: file, line: line)
        XCTAssertEqual(now.st_mtim.tv_sec, canaryInfo.st_mtim.tv_sec, file: file, line: line)
        XCTAssertEqual(try? String(contentsOfFile: canary, encoding: .utf8), Self.canaryText, file: file, line: line)
    }

    /// `lstat` of a path below the layer, or nil.
    func info(_ relative: String, in layer: String? = nil) -> stat? {
        var result = stat()
        return lstat((layer ?? self.layer) + "/" + relative, &result) == 0 ? result : nil
    }

    func contents(_ relative: String) -> String? {
        try? String(contentsOfFile: layer + "/" + relative, encoding: .utf8)
    }

    /// An xattr of a file or directory below the layer (nil when absent).
    func xattr(_ relative: String, _ name: String, in layer: String? = nil) -> String? {
        let fd = open((layer ?? self.layer) + "/" + relative, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard case .success(let value) = LayerSyscalls.getXattr(fd, name: name) else { return nil }
        return String(decoding: value, as: UTF8.self)
    }
}

enum Layer {
    /// Applies `bytes` into the sandbox's layer directory.
    @discardableResult
    static func apply(_ bytes: [UInt8], into directory: String, expectedDiffID: String? = nil,
                      options: LayerApplier.Options = LayerApplier.Options()) throws(LayerError) -> LayerApplySummary {
        try LayerApplier.apply(LayerBytesSource(bytes), into: directory, expectedDiffID: expectedDiffID, options: options)
    }

    /// The error applying `bytes` throws, failing the test when it succeeds.
    static func failure(_ bytes: [UInt8], into directory: String, options: LayerApplier.Options = LayerApplier.Options(),
                        file: StaticString = #filePath, line: UInt = #line) -> LayerError? {
        do {
            let summary = try apply(bytes, into: directory, options: options)
            XCTFail("applied (\(summary.entries) members) but should have been refused", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        "sha256:" + SHA256.hexDigest(of: bytes)
    }

    /// `bytes` compressed by the `gzip` or `zstd` program; skips the test when it is missing.
    static func compress(_ bytes: [UInt8], with program: String, arguments: [String] = []) throws -> [UInt8] {
        let path = ["/usr/bin/", "/bin/"].map { $0 + program }.first { access($0, X_OK) == 0 }
        guard let path else { throw XCTSkip("\(program) is not installed") }
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("podshim-compress-\(UUID().uuidString)")
        try Data(bytes).write(to: input)
        defer { try? FileManager.default.removeItem(at: input) }  // a temp file of a test
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments + ["-c", input.path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "\(program) failed")
        return [UInt8](data)
    }

    static func requireRoot(_ what: String) throws {
        guard geteuid() == 0 else { throw XCTSkip("\(what) needs root") }
    }
}

extension stat {
    var permissions: mode_t { st_mode & 0o7777 }
    var type: mode_t { st_mode & S_IFMT }
}
