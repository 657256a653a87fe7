import Foundation
@testable import PodshimImages
import XCTest

final class LayerDecompressorTests: XCTestCase {
    /// A tar with enough varied data that compressed and uncompressed sizes differ a lot.
    private func sampleTar() -> [UInt8] {
        var tar = TarBuilder()
        tar.directory("data/")
        for index in 0..<20 {
            tar.file("data/file\(index)", String(repeating: "line \(index) of some text\n", count: 500 + index * 37))
        }
        return tar.finished()
    }

    /// Everything the decompressor yields, in reads of `chunk` bytes, and its digests.
    private func decompress(_ blob: [UInt8], chunk: Int = 4096, limit: UInt64? = nil) throws
        -> (bytes: [UInt8], encoding: LayerEncoding?, digest: String, diffID: String) {
        let decompressor = LayerDecompressor(LayerBytesSource(blob), limit: limit)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 1)
        defer { buffer.deallocate() }
        var out: [UInt8] = []
        while true {
            let count = try decompressor.read(into: buffer)
            if count == 0 { break }
            out += buffer[..<count]
        }
        let (digest, diffID) = try decompressor.finish()
        XCTAssertEqual(decompressor.compressedBytes, UInt64(blob.count))
        XCTAssertEqual(decompressor.uncompressedBytes, UInt64(out.count))
        return (out, decompressor.encoding, digest, diffID)
    }

    func testPlain() throws {
        let tar = sampleTar()
        let result = try decompress(tar)
        XCTAssertEqual(result.encoding, .plain)
        XCTAssertEqual(result.bytes, tar)
        XCTAssertEqual(result.digest, Layer.sha256(tar))
        XCTAssertEqual(result.diffID, Layer.sha256(tar))
    }

    func testGzip() throws {
        let tar = sampleTar()
        let blob = try Layer.compress(tar, with: "gzip", arguments: ["-n"])
        for chunk in [1, 511, 65536] {
            let result = try decompress(blob, chunk: chunk)
            XCTAssertEqual(result.encoding, .gzip)
            XCTAssertEqual(result.bytes, tar)
            XCTAssertEqual(result.digest, Layer.sha256(blob))
            XCTAssertEqual(result.diffID, Layer.sha256(tar))
        }
    }

    func testConcatenatedGzipMembersAreOneStream() throws {
        let tar = sampleTar()
        let half = tar.count / 2
        let blob = try Layer.compress(Array(tar[..<half]), with: "gzip") + Layer.compress(Array(tar[half...]), with: "gzip")
        let result = try decompress(blob)
        XCTAssertEqual(result.bytes, tar)
        XCTAssertEqual(result.diffID, Layer.sha256(tar))
    }

    func testZstd() throws {
        let tar = sampleTar()
        let blob = try Layer.compress(tar, with: "zstd", arguments: ["-q", "-19"])
        for chunk in [1, 4096] {
            let result = try decompress(blob, chunk: chunk)
            XCTAssertEqual(result.encoding, .zstd)
            XCTAssertEqual(result.bytes, tar)
            XCTAssertEqual(result.digest, Layer.sha256(blob))
            XCTAssertEqual(result.diffID, Layer.sha256(tar))
        }
        // Two frames in a row.
        let twice = blob + (try Layer.compress(tar, with: "zstd", arguments: ["-q"]))
        XCTAssertEqual(try decompress(twice).bytes, tar + tar)
    }

    func testTruncatedStreamsAreCorrupt() throws {
        let tar = sampleTar()
        for (program, encoding) in [("gzip", LayerEncoding.gzip), ("zstd", .zstd)] {
            let blob = try Layer.compress(tar, with: program, arguments: program == "zstd" ? ["-q"] : [])
            XCTAssertThrowsError(try decompress(Array(blob.prefix(blob.count - 7)))) { error in
                guard case LayerError.corruptStream(let got, let detail) = error else { return XCTFail("\(error)") }
                XCTAssertEqual(got, encoding)
                XCTAssertFalse(detail.isEmpty)
            }
        }
    }

    func testDamagedAndTrailingGarbage() throws {
        let tar = sampleTar()
        var blob = try Layer.compress(tar, with: "gzip")
        XCTAssertThrowsError(try decompress(blob + Array("junk".utf8))) { error in
            XCTAssertTrue("\(error)".contains("not a gzip member"), "\(error)")
        }
        blob[blob.count / 2] ^= 0xff
        XCTAssertThrowsError(try decompress(blob)) { error in
            guard case LayerError.corruptStream(.gzip, _) = error else { return XCTFail("\(error)") }
        }
        var zstd = try Layer.compress(tar, with: "zstd", arguments: ["-q"])
        zstd[zstd.count / 2] ^= 0xff
        XCTAssertThrowsError(try decompress(zstd)) { error in
            guard case LayerError.corruptStream(.zstd, _) = error else { return XCTFail("\(error)") }
        }
    }

    func testUncompressedLimit() throws {
        let zeros = [UInt8](repeating: 0, count: 4 << 20)
        let bomb = try Layer.compress(zeros, with: "gzip")
        XCTAssertLessThan(bomb.count, 10_000)
        XCTAssertThrowsError(try decompress(bomb, limit: 1 << 20)) { error in
            guard case LayerError.limitExceeded(nil, let detail) = error else { return XCTFail("\(error)") }
            XCTAssertTrue(detail.contains("1048576"), detail)
        }
    }

    func testShortAndEmptyBlobs() throws {
        XCTAssertEqual(try decompress([]).bytes, [])
        XCTAssertEqual(try decompress([0x1f]).encoding, .plain)  // one byte of gzip magic is not gzip
        XCTAssertThrowsError(try decompress([0x1f, 0x8b]))  // gzip magic, then nothing
        XCTAssertThrowsError(try decompress([0x28, 0xb5, 0x2f, 0xfd]))  // zstd magic, then nothing
    }
}
