import Foundation
@testable import PodshimImages
import XCTest

final class LayerTarReaderTests: XCTestCase {
    /// Every member of `bytes`, with each regular file's data.
    private func read(_ bytes: [UInt8], limits: TarLimits = TarLimits()) throws -> [(TarEntry, [UInt8])] {
        var reader = TarReader(LayerBytesSource(bytes), limits: limits)
        var result: [(TarEntry, [UInt8])] = []
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 7, alignment: 1)  // odd size: many reads
        defer { buffer.deallocate() }
        while let entry = try reader.next() {
            var data: [UInt8] = []
            while true {
                let count = try reader.readData(into: buffer)
                if count == 0 { break }
                data += buffer[..<count]
            }
            result.append((entry, data))
        }
        return result
    }

    private func readError(_ bytes: [UInt8], limits: TarLimits = TarLimits(),
                           file: StaticString = #filePath, line: UInt = #line) -> LayerError? {
        do {
            _ = try read(bytes, limits: limits)
            XCTFail("read without error", file: file, line: line)
            return nil
        } catch let error as LayerError {
            return error
        } catch {
            XCTFail("\(error)", file: file, line: line)
            return nil
        }
    }

    func testUstarMembersAndData() throws {
        var tar = TarBuilder()
        tar.directory("etc/", mode: 0o750, uid: 5, gid: 6, mtime: 1234)
        tar.file("etc/hostname", "node\n", mode: 0o4755, uid: 1000, gid: 1001, mtime: 99)
        tar.symlink("etc/link", to: "/hostname")
        tar.hardLink("etc/hard", to: "etc/hostname")
        tar.device("dev/null", type: "3", major: 1, minor: 3)
        tar.device("dev/sda", type: "4", major: 8, minor: 0)
        tar.device("run/fifo", type: "6", major: 0, minor: 0)
        let entries = try read(tar.finished())
        XCTAssertEqual(entries.map { String(decoding: $0.0.name, as: UTF8.self) },
                       ["etc/", "etc/hostname", "etc/link", "etc/hard", "dev/null", "dev/sda", "run/fifo"])
        XCTAssertEqual(entries.map(\.0.kind), [.directory, .regular, .symbolicLink, .hardLink, .characterDevice, .blockDevice, .fifo])
        XCTAssertEqual(entries[0].0.mode, 0o750)
        XCTAssertEqual(entries[0].0.uid, 5)
        XCTAssertEqual(entries[0].0.modificationTime, TarEntry.Time(seconds: 1234))
        XCTAssertEqual(entries[1].0.mode, 0o4755)
        XCTAssertEqual(entries[1].0.gid, 1001)
        XCTAssertEqual(entries[1].1, Array("node\n".utf8))
        XCTAssertEqual(entries[2].0.linkName, Array("/hostname".utf8))
        XCTAssertEqual(entries[3].0.linkName, Array("etc/hostname".utf8))
        XCTAssertEqual([entries[5].0.deviceMajor, entries[5].0.deviceMinor], [8, 0])
        XCTAssertEqual([entries[4].0.deviceMajor, entries[4].0.deviceMinor], [1, 3])
    }

    func testUstarPrefixAndGNULongNames() throws {
        var tar = TarBuilder()
        // ustar: prefix (345, 155 bytes) + "/" + name.
        var header = [UInt8](repeating: 0, count: 512)
        let prefix = Array(String(repeating: "p", count: 120).utf8)
        tar.appendHeader(name: Array("leaf".utf8), type: UInt8(ascii: "0"), mode: 0o644, uid: 0, gid: 0, size: 0,
                         mtime: 1, link: [], major: 0, minor: 0, data: [])
        header = Array(tar.bytes[0..<512])
        for (index, byte) in prefix.enumerated() { header[345 + index] = byte }
        Self.fixChecksum(&header)
        tar = TarBuilder()
        var bytes = header
        let long = String(repeating: "d/", count: 150) + "file"
        let longTarget = String(repeating: "t", count: 300)
        tar.add(TarBuilder.Member(name: Array(long.utf8), type: UInt8(ascii: "2"), link: Array(longTarget.utf8)))
        bytes += tar.finished()
        let entries = try read(bytes)
        XCTAssertEqual(entries.count, 2)
        XCTAssertEqual(String(decoding: entries[0].0.name, as: UTF8.self), String(repeating: "p", count: 120) + "/leaf")
        XCTAssertEqual(String(decoding: entries[1].0.name, as: UTF8.self), long)
        XCTAssertEqual(String(decoding: entries[1].0.linkName, as: UTF8.self), longTarget)
    }

    func testPAXRecordsOverrideTheHeader() throws {
        var tar = TarBuilder()
        let name = String(repeating: "n", count: 200)
        tar.add(TarBuilder.Member(
            name: Array("short".utf8), data: Array("hello".utf8),
            pax: [("path", Array(name.utf8)), ("uid", Array("4000000000".utf8)), ("gid", Array("7".utf8)),
                  ("mtime", Array("1700000000.123456789123".utf8)), ("atime", Array("-1.25".utf8)),
                  ("SCHILY.xattr.user.note", [0, 1, 2, 0xff]), ("SCHILY.xattr.security.capability", [1, 2, 3])],
            gnuLongNames: false))
        let entries = try read(tar.finished())
        let entry = try XCTUnwrap(entries.first?.0)
        XCTAssertEqual(String(decoding: entry.name, as: UTF8.self), name)
        XCTAssertEqual(entry.uid, 4_000_000_000)
        XCTAssertEqual(entry.gid, 7)
        XCTAssertEqual(entry.modificationTime, TarEntry.Time(seconds: 1_700_000_000, nanoseconds: 123_456_789))
        XCTAssertEqual(entry.accessTime, TarEntry.Time(seconds: -2, nanoseconds: 750_000_000))
        XCTAssertEqual(entry.xattrs, ["user.note": [0, 1, 2, 0xff], "security.capability": [1, 2, 3]])
        XCTAssertEqual(entries.first?.1, Array("hello".utf8))
    }

    func testPAXSizeAndLinkpath() throws {
        var tar = TarBuilder()
        // The header says 0 bytes; PAX says 3, and 3 follow.
        tar.appendHeader(name: Array("PaxHeaders/x".utf8), type: UInt8(ascii: "x"), mode: 0, uid: 0, gid: 0, size: 0, mtime: 0,
                         link: [], major: 0, minor: 0,
                         data: TarBuilder.paxRecords([("size", Array("3".utf8)), ("linkpath", Array("ignored".utf8))]))
        tar.appendHeader(name: Array("f".utf8), type: UInt8(ascii: "0"), mode: 0o600, uid: 0, gid: 0, size: 0, mtime: 0,
                         link: [], major: 0, minor: 0, data: [])
        var bytes = tar.bytes
        bytes += Array("abc".utf8) + [UInt8](repeating: 0, count: 509)
        var rest = TarBuilder()
        rest.add(TarBuilder.Member(name: Array("l".utf8), type: UInt8(ascii: "2"), link: Array("x".utf8),
                                   pax: [("linkpath", Array("/very/long/target".utf8))]))
        bytes += rest.finished()
        let entries = try read(bytes)
        XCTAssertEqual(entries.map(\.1), [Array("abc".utf8), []])
        XCTAssertEqual(String(decoding: entries[1].0.linkName, as: UTF8.self), "/very/long/target")
    }

    func testGlobalHeadersApplyToLaterMembers() throws {
        var tar = TarBuilder()
        tar.appendHeader(name: Array("global".utf8), type: UInt8(ascii: "g"), mode: 0, uid: 0, gid: 0, size: 0, mtime: 0,
                         link: [], major: 0, minor: 0,
                         data: TarBuilder.paxRecords([("uid", Array("42".utf8)), ("path", Array("ignored".utf8)),
                                                      ("SCHILY.xattr.user.g", Array("1".utf8))]))
        tar.file("a", uid: 1)
        tar.file("b", pax: [("uid", Array("43".utf8)), ("SCHILY.xattr.user.g", Array("2".utf8))])
        let entries = try read(tar.finished())
        XCTAssertEqual(entries.map { String(decoding: $0.0.name, as: UTF8.self) }, ["a", "b"])
        XCTAssertEqual(entries.map(\.0.uid), [42, 43])
        XCTAssertEqual(entries.map { $0.0.xattrs["user.g"] }, [Array("1".utf8), Array("2".utf8)])
    }

    func testBase256Numbers() {
        XCTAssertEqual(TarReader<LayerBytesSource>.base256([0x80, 0, 0, 0, 0, 0, 0, 1, 0]), 256)
        XCTAssertEqual(TarReader<LayerBytesSource>.base256([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), -1)
        XCTAssertNil(TarReader<LayerBytesSource>.base256([0x80] + [UInt8](repeating: 0xff, count: 11)))
    }

    func testPAXTimes() {
        XCTAssertEqual(TarReader<LayerBytesSource>.time(Array("12".utf8)), TarEntry.Time(seconds: 12))
        XCTAssertEqual(TarReader<LayerBytesSource>.time(Array("12.5".utf8)), TarEntry.Time(seconds: 12, nanoseconds: 500_000_000))
        XCTAssertEqual(TarReader<LayerBytesSource>.time(Array("-3".utf8)), TarEntry.Time(seconds: -3))
        XCTAssertNil(TarReader<LayerBytesSource>.time(Array("1e5".utf8)))
        XCTAssertNil(TarReader<LayerBytesSource>.time(Array("5.".utf8)))
    }

    // MARK: Errors

    func testTruncatedArchives() throws {
        var tar = TarBuilder()
        tar.file("a", String(repeating: "x", count: 1000))
        let whole = tar.finished()
        // Inside the data.
        guard case .malformedArchive(let member, false, _, let detail)? = readError(Array(whole.prefix(700))) else {
            return XCTFail("expected malformedArchive")
        }
        XCTAssertEqual(member, "a")
        XCTAssertTrue(detail.contains("inside the member's data"), detail)
        // Without the end-of-archive block.
        guard case .malformedArchive(_, true, _, let missing)? = readError(tar.bytes) else { return XCTFail("expected malformedArchive") }
        XCTAssertTrue(missing.contains("end-of-archive"), missing)
        // Inside a header.
        XCTAssertNotNil(readError(Array(whole.prefix(300))))
    }

    func testBadChecksumNamesThePreviousMember() {
        var tar = TarBuilder()
        tar.file("first", "1")
        tar.file("second", "2")
        var bytes = tar.finished()
        bytes[1024 + 10] ^= 0x55  // the second header's name
        guard case .malformedArchive(let member, true, let offset, let detail)? = readError(bytes) else {
            return XCTFail("expected malformedArchive")
        }
        XCTAssertEqual(member, "first")
        XCTAssertEqual(offset, 1024)
        XCTAssertTrue(detail.contains("checksum"), detail)
        XCTAssertTrue(LayerError.malformedArchive(member: member, after: true, offset: offset, detail: detail)
            .description.contains("after member \"first\""))
    }

    func testGiantPAXHeaderIsRefused() {
        var tar = TarBuilder()
        tar.file("f", pax: [("comment", [UInt8](repeating: UInt8(ascii: "z"), count: (1 << 20) + 1))])
        guard case .limitExceeded(_, let detail)? = readError(tar.finished()) else { return XCTFail("expected limitExceeded") }
        XCTAssertTrue(detail.contains("PAX header"), detail)
    }

    func testMalformedPAXRecords() {
        for records in [Array("9 path=ab\n".utf8), Array("99 path=a\n".utf8), Array("x path=a\n".utf8),
                        Array("5 =a\n".utf8), Array("3 a".utf8), Array("4 a\n".utf8)] {
            var tar = TarBuilder()
            tar.appendHeader(name: Array("x".utf8), type: UInt8(ascii: "x"), mode: 0, uid: 0, gid: 0, size: 0, mtime: 0,
                             link: [], major: 0, minor: 0, data: records)
            tar.file("f")
            guard case .malformedArchive? = readError(tar.finished()) else {
                return XCTFail("expected malformedArchive for \(String(decoding: records, as: UTF8.self))")
            }
        }
    }

    func testLongNamesAreLimited() {
        var tar = TarBuilder()
        tar.file("x", pax: [("path", [UInt8](repeating: UInt8(ascii: "a"), count: 4097))])
        guard case .limitExceeded(_, let detail)? = readError(tar.finished()) else { return XCTFail("expected limitExceeded") }
        XCTAssertTrue(detail.contains("4097"), detail)
        var gnu = TarBuilder()
        gnu.add(TarBuilder.Member(name: [UInt8](repeating: UInt8(ascii: "a"), count: 5000)))
        guard case .limitExceeded? = readError(gnu.finished()) else { return XCTFail("expected limitExceeded") }
    }

    func testUnsupportedTypes() {
        for (type, words) in [("S", "sparse"), ("M", "multi-volume"), ("Z", "unknown type 'Z'")] {
            var tar = TarBuilder()
            tar.add(TarBuilder.Member(name: Array("f".utf8), type: UInt8(ascii: Unicode.Scalar(type)!)))
            guard case .unsupportedMember(let member, let reason)? = readError(tar.finished()) else {
                return XCTFail("expected unsupportedMember for \(type)")
            }
            XCTAssertEqual(member, "f")
            XCTAssertTrue(reason.contains(words), reason)
        }
        var sparse = TarBuilder()
        sparse.file("s", pax: [("GNU.sparse.major", Array("1".utf8))])
        guard case .unsupportedMember? = readError(sparse.finished()) else { return XCTFail("expected unsupportedMember") }
    }

    func testHeaderOnlyTypesCarryNoData() throws {
        // A hard link whose size field is not 0 (as some writers leave it): no data follows.
        var tar = TarBuilder()
        tar.file("a", "data")
        var link = TarBuilder()
        link.appendHeader(name: Array("b".utf8), type: UInt8(ascii: "1"), mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 0,
                          link: Array("a".utf8), major: 0, minor: 0, data: [])
        var header = Array(link.bytes.prefix(512))
        for (index, byte) in Array("00000000004\0".utf8).enumerated() { header[124 + index] = byte }
        Self.fixChecksum(&header)
        var bytes = tar.bytes + header
        var after = TarBuilder()
        after.file("c", "more")
        bytes += after.finished()
        let entries = try read(bytes)
        XCTAssertEqual(entries.map { String(decoding: $0.0.name, as: UTF8.self) }, ["a", "b", "c"])
        XCTAssertEqual(entries[2].1, Array("more".utf8))
    }

    func testNonUTF8NamesAreKeptAsBytes() throws {
        var tar = TarBuilder()
        tar.add(TarBuilder.Member(name: [UInt8(ascii: "f"), 0xe9, 0xff]))
        let entries = try read(tar.finished())
        XCTAssertEqual(entries.first?.0.name, [UInt8(ascii: "f"), 0xe9, 0xff])
        XCTAssertEqual(entries.first?.0.displayName, "f\\xe9\\xff")
    }

    static func fixChecksum(_ header: inout [UInt8]) {
        for index in 148..<156 { header[index] = UInt8(ascii: " ") }
        let sum = header.reduce(0) { $0 + Int($1) }
        for (index, byte) in (Array(String(format: "%06o", sum).utf8) + [0, UInt8(ascii: " ")]).enumerated() {
            header[148 + index] = byte
        }
    }
}
