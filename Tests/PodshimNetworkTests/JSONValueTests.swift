import PodshimSystem
import XCTest

final class JSONValueTests: XCTestCase {
    func parse(_ text: String) throws -> JSONValue { try JSONValue.parse(Array(text.utf8)) }

    func syntaxError(_ text: String) -> String? {
        thrownError { () throws(JSONSyntaxError) in try JSONValue.parse(Array(text.utf8)) }?.description
    }

    func testValues() throws {
        XCTAssertEqual(
            try parse(#" {"a": [1, -2.5e3, true, false, null, "x"], "b": {}} "#),
            .object([
                ("a", .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null, .string("x")])),
                ("b", .object([])),
            ]))
        XCTAssertEqual(try parse("18446744073709551615"), .number("18446744073709551615"))
        XCTAssertEqual(try parse("\u{FEFF}[]"), .array([]))
    }

    func testStrings() throws {
        XCTAssertEqual(try parse(#""a\"b\\c\/d\n\t\u00e9\ud83d\ude00é""#), .string("a\"b\\c/d\n\té😀é"))
    }

    func testSyntaxErrorsHaveLineAndColumn() {
        XCTAssertEqual(syntaxError("{\n  \"a\": tru\n}"), "unexpected byte 0xA at line 2, column 11")
        XCTAssertEqual(syntaxError(#"{"é": x}"#), "unexpected character 'x' at line 1, column 7")
        XCTAssertEqual(syntaxError(#"{"a" 1}"#), "expected ':' after an object key, found character '1' at line 1, column 6")
        XCTAssertEqual(syntaxError(#"{"a": 1,}"#), "expected a string key, found character '}' at line 1, column 9")
        XCTAssertEqual(syntaxError(#"[1 2]"#), "expected ',' or ']' in an array, found character '2' at line 1, column 4")
        XCTAssertEqual(syntaxError(#"[01]"#), "invalid number (leading zero) at line 1, column 3")
        XCTAssertEqual(syntaxError(#"["a\q"]"#), #"invalid escape '\q' at line 1, column 5"#)
        XCTAssertEqual(syntaxError("[\"a\tb\"]"), "control character in a string at line 1, column 4")
        XCTAssertEqual(syntaxError(#"["\ud800"]"#), #"unpaired surrogate in \u escape at line 1, column 9"#)
        XCTAssertEqual(syntaxError(#"["abc"#), "unterminated string at line 1, column 6")
        XCTAssertEqual(syntaxError(String(repeating: "[", count: 300)), "nesting deeper than 256 levels at line 1, column 257")
    }

    func testInvalidUTF8() {
        let error = thrownError { () throws(JSONSyntaxError) in try JSONValue.parse([0x22, 0xC3, 0x28, 0x22]) }
        XCTAssertEqual(error?.description, "invalid UTF-8 at line 1, column 2")
    }
}
