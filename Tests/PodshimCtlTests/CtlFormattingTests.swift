import Foundation
import Testing
@testable import podshim

@Test func ages() {
    let now = Date(timeIntervalSince1970: 1_000_000_000)
    func ago(_ s: Double) -> String { CtlFormat.age(nanoseconds: Int64((1_000_000_000 - s) * 1e9), now: now) }
    #expect(ago(0.5) == "Just now")
    #expect(ago(1) == "1 second ago")
    #expect(ago(12) == "12 seconds ago")
    #expect(ago(60) == "1 minute ago")
    #expect(ago(185) == "3 minutes ago")
    #expect(ago(7200) == "2 hours ago")
    #expect(ago(3 * 86400) == "3 days ago")
    #expect(ago(20 * 86400) == "2 weeks ago")
    #expect(ago(-5) == "Just now")
    #expect(CtlFormat.age(nanoseconds: 0, now: now) == "-")
}

@Test func sizes() {
    #expect(CtlFormat.bytes(512) == "512B")
    #expect(CtlFormat.bytes(4_404_019) == "4.2MiB")
    #expect(CtlFormat.bytes(1024) == "1.0KiB")
    #expect(CtlFormat.cpuTime(nanoseconds: 999) == "999ns")
    #expect(CtlFormat.cpuTime(nanoseconds: 850_000) == "850µs")
    #expect(CtlFormat.cpuTime(nanoseconds: 152_000_000) == "152ms")
    #expect(CtlFormat.cpuTime(nanoseconds: 3_412_000_000) == "3.41s")
    #expect(CtlFormat.cpuTime(nanoseconds: 125_000_000_000) == "2m05s")
    #expect(CtlFormat.cpuTime(nanoseconds: 11_220_000_000_000) == "3h07m")
}

@Test func ids() throws {
    let a = String(repeating: "a", count: 64), b = "ab" + String(repeating: "0", count: 62)
    #expect(CtlFormat.isFullID(a))
    #expect(!CtlFormat.isFullID("A" + a.dropFirst()))
    #expect(CtlFormat.shortID("sha256:" + a) == String(repeating: "a", count: 13))
    #expect(try CtlFormat.resolve("ab", among: [a, b], kind: "pod") == b)
    #expect(try CtlFormat.resolve(a, among: [a, b], kind: "pod") == a)
    #expect(throws: CtlError.self) { try CtlFormat.resolve("a", among: [a, b], kind: "pod") }
    #expect(throws: CtlError.self) { try CtlFormat.resolve("c", among: [a, b], kind: "pod") }
}

@Test func tables() {
    #expect(CtlFormat.table(header: ["A", "BB", "C"], rows: [["xxx", "y", ""], ["1", "22", "333"]]) == [
        "A     BB   C", "xxx   y", "1     22   333",
    ])
    #expect(CtlFormat.pairs([("a", "1"), ("bbb", "2")]) == ["a:    1", "bbb:  2"])
    #expect(CtlFormat.statusCodeName(5) == "NotFound")
    #expect(CtlFormat.statusCodeName(13) == "Internal")
    #expect(CtlFormat.statusCodeName(99) == "Code(99)")
}

@Test func labels() throws {
    #expect(try CtlFormat.labelSelector(["a=b", "c=", "d=e=f"]) == ["a": "b", "c": "", "d": "e=f"])
    #expect(throws: CtlError.self) { try CtlFormat.labelSelector(["a"]) }
    #expect(throws: CtlError.self) { try CtlFormat.labelSelector(["a=1", "a=2"]) }
}

@Test func json() {
    #expect(CtlFormat.prettyJSON(#"{"a":{},"b":[],"c":"x,{:}\"y","d":[1,2.5e-3]}"#) == """
        {
          "a": {},
          "b": [],
          "c": "x,{:}\\"y",
          "d": [
            1,
            2.5e-3
          ]
        }
        """)
    #expect(CtlFormat.prettyJSON("[]") == "[]")
}

@Test func logs() {
    var reader = CtlCRILogReader()
    let text = "t stdout P ab\nt stderr F e1\nt stdout F cd\nt stdout F\nt stdout F:x tag\nnot cri\nt stdout P tail"
    var entries = reader.feed(Array(text.utf8))
    #expect(entries.map { String(decoding: $0.text, as: UTF8.self) } == ["e1", "abcd", "", "tag", "not cri"])
    #expect(entries[0].stream == .stderr)
    entries = reader.finish()
    #expect(entries.map { String(decoding: $0.text, as: UTF8.self) } == ["tail"])
    // A chunk boundary in the middle of a line.
    var split = CtlCRILogReader()
    #expect(split.feed(Array("t stdout F he".utf8)).isEmpty)
    #expect(split.feed(Array("llo\n".utf8)).map { String(decoding: $0.text, as: UTF8.self) } == ["hello"])
    #expect(CtlCRILogReader.tail([CtlLogEntry(stream: .stdout, text: [1]), CtlLogEntry(stream: .stdout, text: [2])], 1).count == 1)
    #expect(CtlCRILogReader.tail([CtlLogEntry(stream: .stdout, text: [1])], -1).count == 1)
    #expect(CtlCRILogReader.tail([CtlLogEntry(stream: .stdout, text: [1])], 0).isEmpty)
}

@Test func wallClock() {
    #expect(CtlFormat.wallClock(nanoseconds: 1_700_000_000_123_456_789, timeZone: TimeZone(identifier: "UTC")!) == "2023-11-14 22:13:20.123")
}
