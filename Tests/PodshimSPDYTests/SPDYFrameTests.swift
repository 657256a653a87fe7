import XCTest
@testable import PodshimSPDY

/// Frames against bytes a client others wrote sent: crictl 1.36's `exec -i <id> cat` (client-go's
/// SPDY executor over moby/spdystream), recorded from a listener that answered each SYN_STREAM.
final class SPDYFrameTests: XCTestCase {
    /// crictl's side of the session: four SYN_STREAMs (error, stdin, stdout, stderr; their header
    /// blocks share one zlib stream), stdin data, stdin FIN, RST_STREAM CANCEL for the others once
    /// it had its output and status, GOAWAY.
    static let crictlExec = bytes(hex: "800300010000002a0000000100000000000078f9e3c6a7c26260606004a7b392a2d4c45c6851c29a5a54945f04000000ffff800300010000001700000003000000000000c22e555c92929907000000ffff800300010000001900000005000000000000c22ac5565c92925f5a02000000ffff800300010000001500000007000000000000c229975a5404000000ffff000000030000000f7265636f726465642d696e7075740a000000030100000080030003000000080000000700000005800300030000000800000001000000058003000300000008000000050000000580030007000000080000000000000000")

    static func bytes(hex: String) -> [UInt8] {
        var result: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            result.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return result
    }

    func decodeAll(_ bytes: [UInt8], chunk: Int = .max) throws -> [SPDYFrame] {
        let decoder = SPDYFrameDecoder()
        var frames: [SPDYFrame] = []
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            decoder.feed(bytes[offset..<end])
            offset = end
            while let frame = try decoder.next() { frames.append(frame) }
        }
        return frames
    }

    static let expected: [SPDYFrame] = [
        .synStream(streamID: 1, associatedStreamID: 0, priority: 0, flags: 0, headers: ["streamtype": "error"]),
        .synStream(streamID: 3, associatedStreamID: 0, priority: 0, flags: 0, headers: ["streamtype": "stdin"]),
        .synStream(streamID: 5, associatedStreamID: 0, priority: 0, flags: 0, headers: ["streamtype": "stdout"]),
        .synStream(streamID: 7, associatedStreamID: 0, priority: 0, flags: 0, headers: ["streamtype": "stderr"]),
        .data(streamID: 3, flags: 0, payload: Array("recorded-input\n".utf8)),
        .data(streamID: 3, flags: SPDYFrame.flagFin, payload: []),
        .rstStream(streamID: 7, status: .cancel),
        .rstStream(streamID: 1, status: .cancel),
        .rstStream(streamID: 5, status: .cancel),
        .goAway(lastGoodStreamID: 0, status: 0),
    ]

    func testDecodesWhatCrictlSent() throws {
        XCTAssertEqual(try decodeAll(Self.crictlExec), Self.expected)
    }

    func testDecodesByteByByte() throws {
        XCTAssertEqual(try decodeAll(Self.crictlExec, chunk: 1), Self.expected)
    }

    func testTheDictionaryIsSPDY3s() {
        XCTAssertEqual(SPDYHeaderCodec.dictionary.count, 1423)
        XCTAssertEqual(Array(SPDYHeaderCodec.dictionary.prefix(11)), [0, 0, 0, 7] + Array("options".utf8))
        XCTAssertEqual(Array(SPDYHeaderCodec.dictionary.suffix(5)), Array("enq=0.".utf8).suffix(5))
    }

    func testWhatTheEncoderWritesDecodesTheSame() throws {
        let frames: [SPDYFrame] = [
            .synReply(streamID: 1, flags: 0, headers: SPDYHeaders()),
            .synReply(streamID: 3, flags: 0, headers: ["x-stream-protocol-version": "v4.channel.k8s.io", "port": "8080"]),
            .synStream(streamID: 2, associatedStreamID: 1, priority: 3, flags: SPDYFrame.flagUnidirectional, headers: ["streamtype": "data"]),
            .headers(streamID: 3, flags: SPDYFrame.flagFin, headers: ["a": "b\u{0}c"]),
            .data(streamID: 5, flags: SPDYFrame.flagFin, payload: Array(repeating: 7, count: 70_000)),
            .rstStream(streamID: 9, status: .refusedStream),
            .settings(flags: 1, values: [SPDYSetting(flags: 0, id: 7, value: 65536), SPDYSetting(flags: 2, id: 4, value: 100)]),
            .ping(id: 2),
            .goAway(lastGoodStreamID: 7, status: 0),
            .windowUpdate(streamID: 1, delta: 1 << 20),
        ]
        let encoder = SPDYFrameEncoder()
        let bytes = frames.flatMap(encoder.encode)
        XCTAssertEqual(try decodeAll(bytes, chunk: 1000), frames)
    }

    func testControlFramesOfAnotherVersionOrShapeAreRefused() {
        let cases: [([UInt8], String)] = [
            ([0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1], "control frame of version 2"),
            ([0x80, 0x03, 0x00, 0x06, 0, 0, 0, 3, 0, 0, 1], "PING frame of 3 bytes, not 4"),
            ([0x80, 0x03, 0x00, 0x03, 0, 0, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0], "RST_STREAM with status 0"),
            ([0x80, 0x03, 0x00, 0x01, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], "SYN_STREAM for stream 0"),
        ]
        for (bytes, message) in cases {
            XCTAssertThrowsError(try decodeAll(bytes)) { error in
                XCTAssertTrue(String(describing: error).contains(message), "\(error) vs \(message)")
            }
        }
        // An oversized frame is refused from its header alone, before its payload arrives.
        let decoder = SPDYFrameDecoder(maximumPayload: 1024)
        decoder.feed([0, 0, 0, 1, 0, 0, 0x10, 0])
        XCTAssertThrowsError(try decoder.next())
    }

    func testUnknownControlFramesAreSkipped() throws {
        // CREDENTIAL (10) is not something this server uses: ignored, the next frame follows.
        let bytes: [UInt8] = [0x80, 0x03, 0x00, 0x0a, 0, 0, 0, 2, 9, 9] + SPDYFrameEncoder().encode(.ping(id: 1))
        XCTAssertEqual(try decodeAll(bytes), [.ping(id: 1)])
    }

    func testHeaderBlocksThatBreakTheRulesAreRefused() throws {
        func block(_ pairs: [(String, String)], count: UInt32? = nil, trailing: [UInt8] = []) -> [UInt8] {
            // Built by hand, compressed with the codec's own compressor on raw bytes.
            var plain = SPDYHeaderCodec.bigEndian(count ?? UInt32(pairs.count))
            for (name, value) in pairs {
                plain += SPDYHeaderCodec.bigEndian(UInt32(name.utf8.count)) + Array(name.utf8)
                plain += SPDYHeaderCodec.bigEndian(UInt32(value.utf8.count)) + Array(value.utf8)
            }
            return SPDYHeaderCodec.Compressor().compressRaw(plain + trailing)
        }
        let cases: [([UInt8], String)] = [
            (block([("Streamtype", "error")]), "not lower case"),
            (block([("host", "x")]), "\"host\" is not allowed"),
            (block([("a", "1"), ("a", "2")]), "appears twice"),
            (block([("a", "1")], count: 2), "ends inside a pair"),
            (block([("a", "1")], trailing: [0]), "bytes after the last header pair"),
            ([1, 2, 3, 4, 5], "does not decompress"),
        ]
        for (compressed, message) in cases {
            let payload = SPDYHeaderCodec.bigEndian(5) + compressed
            let frame: [UInt8] = [0x80, 0x03, 0x00, 0x02, 0] + [UInt8(payload.count >> 16), UInt8(payload.count >> 8 & 0xff), UInt8(payload.count & 0xff)] + payload
            XCTAssertThrowsError(try decodeAll(frame)) { error in
                XCTAssertTrue(String(describing: error).contains(message), "\(error) vs \(message)")
                XCTAssertEqual((error as? SPDYProtocolError)?.stream, 5)
            }
        }
    }

    func testACompressionBombStopsAtTheLimit() {
        let plain = SPDYHeaderCodec.bigEndian(1) + SPDYHeaderCodec.bigEndian(1) + Array("a".utf8)
            + SPDYHeaderCodec.bigEndian(UInt32(SPDYHeaderCodec.maximumBlockSize)) + Array(repeating: UInt8(ascii: "x"), count: SPDYHeaderCodec.maximumBlockSize)
        let compressed = SPDYHeaderCodec.Compressor().compressRaw(plain)
        XCTAssertLessThan(compressed.count, 4096)
        let payload = SPDYHeaderCodec.bigEndian(1) + compressed
        let frame: [UInt8] = [0x80, 0x03, 0x00, 0x02, 0] + [UInt8(payload.count >> 16), UInt8(payload.count >> 8 & 0xff), UInt8(payload.count & 0xff)] + payload
        XCTAssertThrowsError(try decodeAll(frame)) { error in
            XCTAssertTrue(String(describing: error).contains("larger than"), "\(error)")
        }
    }
}
