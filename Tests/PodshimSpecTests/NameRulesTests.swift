import XCTest
@testable import PodshimSpec

/// The name, path and quantity syntaxes the parser checks against.
final class NameRulesTests: XCTestCase {
    func testDNS1123Label() {
        for name in ["a", "web", "web-1", "1web", String(repeating: "a", count: 63)] {
            XCTAssertTrue(NameRules.isDNS1123Label(name), name)
        }
        for name in ["", "Web", "-web", "web-", "web.local", "web_1", "wéb", String(repeating: "a", count: 64)] {
            XCTAssertFalse(NameRules.isDNS1123Label(name), name)
        }
    }

    func testDNS1123Subdomain() {
        for name in ["web", "web.example.com", "a-b.c-d", String(repeating: "a", count: 253)] {
            XCTAssertTrue(NameRules.isDNS1123Subdomain(name), name)
        }
        for name in ["", ".web", "web.", "a..b", "a.-b", "a-.b", "Web", String(repeating: "a", count: 254)] {
            XCTAssertFalse(NameRules.isDNS1123Subdomain(name), name)
        }
    }

    func testIANAServiceName() {
        for name in ["http", "h2c", "my-port", "a", "abcdefghijklmno"] {
            XCTAssertTrue(NameRules.isIANAServiceName(name), name)
        }
        for name in ["", "8080", "HTTP", "-http", "http-", "my--port", "abcdefghijklmnop", "my_port"] {
            XCTAssertFalse(NameRules.isIANAServiceName(name), name)
        }
    }

    func testUID() {
        for uid in ["a", "0b1c_2D-3e", "123e4567-e89b-12d3-a456-426614174000", String(repeating: "u", count: 64)] {
            XCTAssertTrue(NameRules.isValidUID(uid), uid)
        }
        for uid in ["", ".", "..", "a/b", "a b", "a.b", String(repeating: "u", count: 65)] {
            XCTAssertFalse(NameRules.isValidUID(uid), uid)
        }
    }

    func testDefaultHostname() {
        XCTAssertEqual(NameRules.defaultHostname(forPodName: "web"), "web")
        XCTAssertEqual(NameRules.defaultHostname(forPodName: "web.example"), "web.example")
        let long = String(repeating: "a", count: 70)
        XCTAssertEqual(NameRules.defaultHostname(forPodName: long), String(repeating: "a", count: 63))
        let cutAtDot = String(repeating: "a", count: 61) + ".-b"
        XCTAssertEqual(NameRules.defaultHostname(forPodName: cutAtDot + "ccc"), String(repeating: "a", count: 61))
    }

    func testPaths() {
        XCTAssertTrue(PathRules.isAbsolute("/"))
        XCTAssertFalse(PathRules.isAbsolute("data"))
        XCTAssertTrue(PathRules.hasParentComponent("/a/../b"))
        XCTAssertTrue(PathRules.hasParentComponent(".."))
        XCTAssertFalse(PathRules.hasParentComponent("/a/..b/c.."))
        XCTAssertEqual(PathRules.normalized("//data/./x/"), "/data/x")
        XCTAssertEqual(PathRules.normalized("/"), "/")
        XCTAssertEqual(PathRules.normalized("a/./b"), "a/b")
    }

    func testQuantities() {
        for text in ["1", "64Mi", "1G", "1.5Gi", "500m", ".5", "+2k", "1e9", "1E-3", "2Ei"] {
            XCTAssertTrue(QuantityRules.isQuantity(text), text)
        }
        for text in ["", "lots", "-1Gi", "1GB", "1 Gi", "1..5", ".", "Mi", "1e", "1Ki2"] {
            XCTAssertFalse(QuantityRules.isQuantity(text), text)
        }
    }
}
