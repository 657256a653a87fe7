import Testing
@testable import podshim_bench

@Test func statsInMicroseconds() {
    var book = LatencyBook()
    for ns in [100_000, 200_000, 300_000, 400_000] as [UInt64] { book.record("Version", nanoseconds: ns) }
    book.markUnimplemented("ListPodSandboxStats")
    let json = Report.stats(book).rendered()
    #expect(json.contains("\"Version\": {\"count\": 4, \"min_us\": 100, \"p50_us\": 200"))
    #expect(json.contains("\"max_us\": 400"))
    #expect(json.contains("\"mean_us\": 250"))
    #expect(json.contains("\"ListPodSandboxStats\": {\"unimplemented\": true}"))
    #expect(book.total == 1_000_000)
}

@Test func stagesKeepFirstSeenOrder() throws {
    var book = LatencyBook()
    book.record(try StartProfile.parse(#"{"stages":[{"stage":"plan","ns":1000},{"stage":"clone","ns":50000}]}"#))
    book.record(try StartProfile.parse(#"{"stages":[{"stage":"exec","ns":7000},{"stage":"plan","ns":3000}]}"#))
    #expect(book.entries.map(\.name) == ["plan", "clone", "exec"])
    #expect(book.histogram("plan")?.totalCount == 2)
    let json = Report.profile(book).rendered()
    #expect(json.hasPrefix("[\n  {\"stage\": \"plan\", \"count\": 2,"))
    #expect(throws: (any Error).self) { try StartProfile.parse(#"{"stages":[{"name":"x"}]}"#) }
}

@Test func mergeAddsCounts() {
    var a = LatencyBook(), b = LatencyBook()
    a.record("RunPodSandbox", nanoseconds: 5_000_000)
    b.record("StartContainer", nanoseconds: 1_000_000)
    b.record("RunPodSandbox", nanoseconds: 7_000_000)
    a.merge(b)
    #expect(a.entries.map(\.name) == ["RunPodSandbox", "StartContainer"])
    #expect(a.histogram("RunPodSandbox")?.totalCount == 2)
}

@Test func jsonEscapesAndOrders() {
    let json = BenchJSON.object([
        ("label", .string("a\"b\n")), ("start_s", .seconds(1_234_567_890)), ("none", .null),
        ("rpcs", .object([("x", .object([("count", .int(1))]))])),
    ]).rendered()
    #expect(json == """
        {
          "label": "a\\"b\\n",
          "start_s": 1.235,
          "none": null,
          "rpcs": {
            "x": {"count": 1}
          }
        }
        """)
}

@Test func procStatus() {
    let text = "Name:\tpodshim\nState:\tS (sleeping)\nVmRSS:\t   51234 kB\nThreads:\t17\n"
    #expect(ProcSnapshot.parse(status: text) == ProcSnapshot(threads: 17, rssKB: 51234))
    #expect(ProcSnapshot.parse(status: "Name:\tx\n") == nil)
}
