import XCTest
@testable import PodshimRuntime
import Glibc

/// CRILogFormatter: bytes → `<RFC3339Nano> <stream> <P|F> <text>\n` records, with a fixed clock.
final class CRILogFormatterTests: XCTestCase {
    private static let epochPlus5ns = "1970-01-01T00:00:00.000000005Z"

    private func formatter(_ stream: LogStream = .stdout, maxLineSize: Int = CRILogFormatter.defaultMaxLineSize)
        -> CRILogFormatter
    {
        CRILogFormatter(stream: stream, maxLineSize: maxLineSize, now: { timespec(tv_sec: 0, tv_nsec: 5) })
    }

    private func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    private func lines(_ records: [CRILogFormatter.Record]) -> [String] {
        records.map { String(decoding: $0.line, as: UTF8.self) }
    }

    func testDefaultMaxLineSizeIsContainerds() {
        XCTAssertEqual(CRILogFormatter.defaultMaxLineSize, 16384)
        XCTAssertEqual(CRILogFormatter(stream: .stdout).maxLineSize, 16384)
    }

    func testOneFullLineExactBytes() {
        var log = formatter()
        let records = log.append(bytes("hello\n"))
        XCTAssertEqual(records.count, 1)
        XCTAssertEqual(records.first?.line, bytes("1970-01-01T00:00:00.000000005Z stdout F hello\n"))
        XCTAssertEqual(records.first?.text, bytes("hello"))
        XCTAssertEqual(records.first?.partial, false)
        XCTAssertEqual(log.finish(), [])
    }

    func testStderrStreamName() {
        var log = formatter(.stderr)
        XCTAssertEqual(lines(log.append(bytes("oops\n"))), ["\(Self.epochPlus5ns) stderr F oops\n"])
        XCTAssertEqual(LogStream.stderr.rawValue, "stderr")
        XCTAssertEqual(LogStream.stdout.rawValue, "stdout")
    }

    func testTwoLinesInOneChunk() {
        var log = formatter()
        XCTAssertEqual(lines(log.append(bytes("one\ntwo\n"))), [
            "\(Self.epochPlus5ns) stdout F one\n",
            "\(Self.epochPlus5ns) stdout F two\n",
        ])
        XCTAssertEqual(log.finish(), [])
    }

    func testEmptyLine() {
        var log = formatter()
        let records = log.append(bytes("\n"))
        XCTAssertEqual(lines(records), ["\(Self.epochPlus5ns) stdout F \n"])
        XCTAssertEqual(records.first?.text, [])
    }

    func testLineSplitAcrossTwoAppends() {
        var log = formatter()
        XCTAssertEqual(log.append(bytes("hel")), [])
        XCTAssertEqual(lines(log.append(bytes("lo\nwor"))), ["\(Self.epochPlus5ns) stdout F hello\n"])
        XCTAssertEqual(lines(log.append(bytes("ld\n"))), ["\(Self.epochPlus5ns) stdout F world\n"])
        XCTAssertEqual(log.finish(), [])
    }

    func testByteByByteFeedingGivesTheSameRecords() {
        var log = formatter()
        var records: [CRILogFormatter.Record] = []
        for byte in bytes("ab\ncd\n") { records += log.append([byte]) }
        XCTAssertEqual(lines(records), ["\(Self.epochPlus5ns) stdout F ab\n", "\(Self.epochPlus5ns) stdout F cd\n"])
    }

    func testLongLineIsCutIntoPartialsThenFull() {
        var log = formatter(maxLineSize: 4)
        let records = log.append(bytes("abcdefghij\n"))
        XCTAssertEqual(lines(records), [
            "\(Self.epochPlus5ns) stdout P abcd\n",
            "\(Self.epochPlus5ns) stdout P efgh\n",
            "\(Self.epochPlus5ns) stdout F ij\n",
        ])
        XCTAssertEqual(records.map(\.partial), [true, true, false])
        XCTAssertEqual(records.map(\.text), [bytes("abcd"), bytes("efgh"), bytes("ij")])
        XCTAssertEqual(log.finish(), [])
    }

    func testExactlyMaxLineSizeThenNewlineIsOneFullLine() {
        var log = formatter(maxLineSize: 4)
        XCTAssertEqual(lines(log.append(bytes("abcd\n"))), ["\(Self.epochPlus5ns) stdout F abcd\n"])
        XCTAssertEqual(log.finish(), [])
    }

    func testExactlyMaxLineSizeWaitsForTheNewline() {
        var log = formatter(maxLineSize: 4)
        XCTAssertEqual(log.append(bytes("abcd")), [])
        XCTAssertEqual(lines(log.append(bytes("\n"))), ["\(Self.epochPlus5ns) stdout F abcd\n"])
    }

    func testTwiceMaxLineSizeThenNewline() {
        var log = formatter(maxLineSize: 4)
        XCTAssertEqual(lines(log.append(bytes("abcdefgh\n"))), [
            "\(Self.epochPlus5ns) stdout P abcd\n",
            "\(Self.epochPlus5ns) stdout F efgh\n",
        ])
    }

    func testPartialIsEmittedAsSoonAsTheLimitIsExceeded() {
        var log = formatter(maxLineSize: 4)
        XCTAssertEqual(lines(log.append(bytes("abcde"))), ["\(Self.epochPlus5ns) stdout P abcd\n"])
        XCTAssertEqual(lines(log.append(bytes("f\nxy"))), ["\(Self.epochPlus5ns) stdout F ef\n"])
        XCTAssertEqual(lines(log.finish()), ["\(Self.epochPlus5ns) stdout F xy\n"])
    }

    func testShortLinesAfterLongLine() {
        var log = formatter(maxLineSize: 4)
        XCTAssertEqual(lines(log.append(bytes("abcdef\na\nbc\n"))), [
            "\(Self.epochPlus5ns) stdout P abcd\n",
            "\(Self.epochPlus5ns) stdout F ef\n",
            "\(Self.epochPlus5ns) stdout F a\n",
            "\(Self.epochPlus5ns) stdout F bc\n",
        ])
    }

    func testFinishEmitsPendingTextAsFull() {
        var log = formatter()
        XCTAssertEqual(log.append(bytes("no newline")), [])
        let records = log.finish()
        XCTAssertEqual(lines(records), ["\(Self.epochPlus5ns) stdout F no newline\n"])
        XCTAssertEqual(records.first?.partial, false)
        XCTAssertEqual(log.finish(), [], "finish clears what it emitted")
    }

    func testFinishWithNothingPendingEmitsNothing() {
        var log = formatter()
        XCTAssertEqual(log.finish(), [])
        XCTAssertEqual(log.append([]), [])
        XCTAssertEqual(log.finish(), [])
    }

    func testClockIsReadPerRecord() {
        var tick = 0
        var log = CRILogFormatter(stream: .stdout, now: {
            tick += 1
            return timespec(tv_sec: tick, tv_nsec: 0)
        })
        XCTAssertEqual(lines(log.append(bytes("a\nb\n"))), [
            "1970-01-01T00:00:01.000000000Z stdout F a\n",
            "1970-01-01T00:00:02.000000000Z stdout F b\n",
        ])
    }

    func testNonUTF8BytesArePassedThrough() {
        var log = formatter()
        let records = log.append([0xff, 0x00, 0xfe, UInt8(ascii: "\n")])
        XCTAssertEqual(records.first?.text, [0xff, 0x00, 0xfe])
        XCTAssertEqual(records.first?.line, bytes("\(Self.epochPlus5ns) stdout F ") + [0xff, 0x00, 0xfe, 0x0a])
    }

    // MARK: timestamps

    func testTimestampOfEpoch() {
        XCTAssertEqual(CRILogFormatter.timestamp(timespec(tv_sec: 0, tv_nsec: 0)), "1970-01-01T00:00:00.000000000Z")
        XCTAssertEqual(CRILogFormatter.timestamp(timespec(tv_sec: 0, tv_nsec: 5)), Self.epochPlus5ns)
    }

    func testTimestampOfKnownDate() {
        XCTAssertEqual(CRILogFormatter.timestamp(timespec(tv_sec: 1_700_000_000, tv_nsec: 123)),
                       "2023-11-14T22:13:20.000000123Z")
    }

    func testTimestampPadsEveryField() {
        // 2001-02-03T04:05:06Z
        XCTAssertEqual(CRILogFormatter.timestamp(timespec(tv_sec: 981_173_106, tv_nsec: 999_999_999)),
                       "2001-02-03T04:05:06.999999999Z")
        XCTAssertEqual(CRILogFormatter.timestamp(timespec(tv_sec: 981_173_106, tv_nsec: 100_000_000)),
                       "2001-02-03T04:05:06.100000000Z")
    }

    func testTimestampEndOfYearAndLeapDay() {
        // 1999-12-31T23:59:59Z and 2024-02-29T12:00:00Z
        XCTAssertEqual(CRILogFormatter.timestamp(timespec(tv_sec: 946_684_799, tv_nsec: 1)),
                       "1999-12-31T23:59:59.000000001Z")
        XCTAssertEqual(CRILogFormatter.timestamp(timespec(tv_sec: 1_709_208_000, tv_nsec: 0)),
                       "2024-02-29T12:00:00.000000000Z")
    }
}
