import XCTest
@testable import PodshimSpec

/// Kubernetes quantities, parsed and converted exactly.
final class QuantityTests: XCTestCase {
    private func quantity(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> Quantity {
        try XCTUnwrap(Quantity(text), "\"\(text)\" should parse", file: file, line: line)
    }

    func testCPUMilliValues() throws {
        let cases: [(String, Int64)] = [
            ("100m", 100), ("0.5", 500), ("2", 2000), ("1.5", 1500), ("0.0005", 1), ("250m", 250),
            (".5", 500), ("1.", 1000), ("+1", 1000), ("0", 0), ("0.000", 0), ("1n", 1), ("1u", 1),
            ("1000000n", 1), ("1000001n", 2), ("2.5m", 3), ("1k", 1_000_000), ("0.1m", 1),
            ("007", 7000), ("1e-3", 1), ("1e-4", 1), ("15e-4", 2),
        ]
        for (text, millis) in cases {
            XCTAssertEqual(try quantity(text).milliValue(), millis, text)
        }
    }

    func testByteValues() throws {
        let cases: [(String, Int64)] = [
            ("128974848", 128_974_848), ("129e6", 129_000_000), ("129M", 129_000_000),
            ("123Mi", 128_974_848), ("1G", 1_000_000_000), ("1Gi", 1_073_741_824), ("0.5Ki", 512),
            ("1.5Mi", 1_572_864), ("100m", 1), ("1e3", 1000), ("5E-1", 1), ("1E3", 1000), ("1e+3", 1000),
            ("1k", 1000), ("1Ki", 1024), ("1Ti", 1 << 40), ("1Pi", 1 << 50), ("7Ei", 7 << 60),
            ("1T", 1_000_000_000_000), ("1P", 1_000_000_000_000_000), ("2E", 2_000_000_000_000_000_000),
            ("0.1Ki", 103), ("0.001Ki", 2), ("1.00000", 1), ("1.000001", 2), ("0Gi", 0), ("0e99", 0),
            ("1e-1000000", 1), ("1Mi", 1_048_576), ("64Mi", 67_108_864), ("1.5Gi", 1_610_612_736),
        ]
        for (text, bytes) in cases {
            XCTAssertEqual(try quantity(text).value(), bytes, text)
        }
    }

    func testOverflow() throws {
        XCTAssertEqual(try quantity("9223372036854775807").value(), Int64.max)
        XCTAssertNil(try quantity("9223372036854775808").value())
        XCTAssertNil(try quantity("9223372036854775806.5").milliValue())
        XCTAssertEqual(try quantity("9223372036854775806.5").value(), Int64.max)
        XCTAssertNil(try quantity("9223372036854775807.5").value())
        XCTAssertEqual(try quantity("9223372036854775.807").milliValue(), Int64.max)
        XCTAssertNil(try quantity("9223372036854775.8071").milliValue())
        XCTAssertNil(try quantity("9223372036854776").milliValue())
        XCTAssertEqual(try quantity("9223372036854776").value(), 9_223_372_036_854_776)
        XCTAssertNil(try quantity("8Ei").value())
        XCTAssertNil(try quantity("10E").value())
        XCTAssertNil(try quantity("1e19").value())
        XCTAssertEqual(try quantity("1e18").value(), 1_000_000_000_000_000_000)
        XCTAssertNil(try quantity("1e2000000000").value())
        XCTAssertNil(try quantity("100000000000000000000000000000").value())
        XCTAssertEqual(try quantity("0.00000000000000000000000000001").value(), 1)
        XCTAssertEqual(try quantity("-8Ei").value(), Int64.min)
        XCTAssertNil(try quantity("-9223372036854775809").value())
    }

    func testNegative() throws {
        let minusOne = try quantity("-1")
        XCTAssertTrue(minusOne.isNegative)
        XCTAssertEqual(minusOne.value(), -1)
        XCTAssertEqual(minusOne.milliValue(), -1000)
        // Rounded away from zero, as Kubernetes does.
        XCTAssertEqual(try quantity("-0.5").value(), -1)
        XCTAssertEqual(try quantity("-1Ki").value(), -1024)
        XCTAssertTrue(try quantity("-100m").isNegative)
        XCTAssertFalse(try quantity("-0").isNegative)
        XCTAssertTrue(try quantity("-0").isZero)
        XCTAssertFalse(try quantity("+1").isNegative)
        XCTAssertFalse(try quantity("1").isZero)
    }

    func testInvalid() {
        let invalid = [
            "12XB", "1.2.3", "", "Mi", "1 Gi", "--1", "1Ki2", "0x10", " 1", "1 ", ".", "+", "-", "-.",
            "e3", "1e", "1E+", "1e-", "1e3Mi", "1ki", "1K", "1mi", "1KB", "1GB", "1..5", "1,5", "1.5e",
            "1e1.5", "+-1", "1_000", "١", "1e2147483648", "1e99999999999", "lots", "Infinity", "NaN",
        ]
        for text in invalid {
            XCTAssertNil(Quantity(text), "\"\(text)\" should not parse")
        }
        XCTAssertNotNil(Quantity("1e2147483647"))
        XCTAssertNotNil(Quantity("1e-2147483647"))
    }

    func testTextAndEquality() throws {
        let quantity = try quantity("1.5Gi")
        XCTAssertEqual(quantity.text, "1.5Gi")
        XCTAssertEqual(quantity.description, "1.5Gi")
        XCTAssertEqual(quantity, Quantity("1.5Gi"))
        XCTAssertNotEqual(Quantity("1Gi"), Quantity("1024Mi"))
    }

    func testCompare() throws {
        let cases: [(String, String, Int)] = [
            ("1Gi", "1024Mi", 0), ("0.5", "500m", 0), ("5E-1", "500m", 0), ("1G", "1Gi", -1),
            ("1Gi", "1G", 1), ("1.0000000001", "1", 1), ("1", "1.0000000001", -1), ("-1", "0", -1),
            ("-2", "-1", -1), ("-1", "-2", 1), ("0", "-0", 0), ("1e-1000", "0", 1), ("0.7m", "0.5m", 1),
            ("129e6", "129M", 0), ("128974848", "123Mi", 0), ("1Ei", "1E", 1), ("100", "99.99", 1),
            ("2", "10", -1), ("10", "2", 1), ("1e2147483647", "1e2147483646", 1),
        ]
        for (a, b, expected) in cases {
            XCTAssertEqual(try quantity(a).compare(try quantity(b)), expected, "\(a) vs \(b)")
        }
    }
}
