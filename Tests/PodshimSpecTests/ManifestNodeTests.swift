import XCTest
@testable import PodshimSpec

/// The typed accessors of the YAML walker, on single values.
final class ManifestNodeTests: XCTestCase {
    /// The YAML `text` (a list entry, so null stays a node) as a node at path `value`.
    private func value(_ text: String) throws -> ManifestNode {
        let document = try XCTUnwrap(try ManifestNode.document(yaml: "- \(text)\n"))
        let item = try XCTUnwrap(try document.list().first)
        return ManifestNode(node: item.node, path: "value")
    }

    /// The error `body` throws, as `path: message`, or nil when it succeeds.
    private func failure<T>(_ body: () throws(ManifestError) -> T) -> String? {
        do {
            _ = try body()
            return nil
        } catch {
            return error.description
        }
    }

    func testIntegers() throws {
        XCTAssertEqual(try value("5").int(), 5)
        XCTAssertEqual(try value("-12").int(), -12)
        XCTAssertEqual(try value("+7").int(), 7)
        XCTAssertEqual(try value("0").int(), 0)
        for text in ["\"5\"", "'5'", "5.5", "abc", "05", "0x10", "1_000", "1e3", "!!str 5", "[5]", "{ a: 5 }", "true"] {
            let node = try value(text)
            XCTAssertEqual(failure { () throws(ManifestError) in try node.int() }, "value: must be an integer", text)
        }
    }

    func testBooleans() throws {
        XCTAssertEqual(try value("true").bool(), true)
        XCTAssertEqual(try value("false").bool(), false)
        for text in ["yes", "no", "True", "\"true\"", "1", "on", "[true]"] {
            let node = try value(text)
            XCTAssertEqual(failure { () throws(ManifestError) in try node.bool() }, "value: must be a boolean", text)
        }
    }

    func testStrings() throws {
        XCTAssertEqual(try value("8080").string(), "8080")
        XCTAssertEqual(try value("true").string(), "true")
        XCTAssertEqual(try value("'~'").string(), "~")
        XCTAssertEqual(try value("\"\"").string(), "")
        XCTAssertEqual(try value("|\n  two\n  lines").string(), "two\nlines\n")
        for text in ["~", "null", "[a]", "{ a: b }"] {
            let node = try value(text)
            XCTAssertEqual(failure { () throws(ManifestError) in try node.string() }, "value: must be a string", text)
        }
    }

    func testNull() throws {
        for text in ["", "~", "null", "Null", "NULL"] {
            XCTAssertTrue(try value(text).isNull, text)
        }
        for text in ["'~'", "\"null\"", "!!str null", "nil", "[]", "{}"] {
            XCTAssertFalse(try value(text).isNull, text)
        }
    }

    func testStringLists() throws {
        XCTAssertEqual(try value("[httpd, -f, -p, 8080, \"8081\", true, '']").stringList(), ["httpd", "-f", "-p", "8080", "8081", "true", ""])
        XCTAssertEqual(try value("[]").stringList(), [])
        for text in ["a", "[a, [b]]", "[a, null]", "{ a: b }"] {
            let node = try value(text)
            XCTAssertEqual(failure { () throws(ManifestError) in try node.stringList() }, "value: must be a list of strings", text)
        }
    }

    func testStringMaps() throws {
        XCTAssertEqual(try value("{ a: b, c: 1, d: '' }").stringMap(), ["a": "b", "c": "1", "d": ""])
        let nested = try value("{ a: { b: c } }")
        XCTAssertEqual(failure { () throws(ManifestError) in try nested.stringMap() }, "value.a: must be a string")
        let list = try value("[a]")
        XCTAssertEqual(failure { () throws(ManifestError) in try list.stringMap() }, "value: must be a mapping")
        let complexKey = try value("{ [a]: b }")
        XCTAssertEqual(failure { () throws(ManifestError) in try complexKey.stringMap() }, "value: keys must be strings")
    }

    func testListsGiveIndexedPaths() throws {
        let items = try value("[a, b, c]").list()
        XCTAssertEqual(items.map(\.path), ["value[0]", "value[1]", "value[2]"])
        let scalar = try value("a")
        XCTAssertEqual(failure { () throws(ManifestError) in try scalar.list() }, "value: must be a list")
    }

    func testMappingsRejectUnknownFields() throws {
        let node = try value("{ known: 1, other: 2, more: 3 }")
        XCTAssertEqual(failure { () throws(ManifestError) in try node.mapping(accepting: ["known"]) }, "value.other: unknown field")
        let mapping = try node.mapping(accepting: ["known", "other", "more"])
        XCTAssertEqual(try mapping.int("known"), 1)
        XCTAssertNil(try mapping.int("absent"))
        XCTAssertTrue(mapping.contains("other"))
        XCTAssertFalse(mapping.contains("absent"))
        XCTAssertEqual(failure { () throws(ManifestError) in try mapping.requiredString("absent") }, "value.absent: required")
        XCTAssertEqual(try value("~").mapping(accepting: []).path, "value")
        XCTAssertFalse(try value("~").mapping(accepting: []).contains("value"))
    }

    func testMappingLists() throws {
        let node = try value("[{ a: 1 }, b]")
        XCTAssertEqual(failure { () throws(ManifestError) in try node.mappingList(accepting: ["a"]) }, "value[1]: must be a mapping")
        let unknown = try value("[{ a: 1 }, { b: 2 }]")
        XCTAssertEqual(failure { () throws(ManifestError) in try unknown.mappingList(accepting: ["a"]) }, "value[1].b: unknown field")
    }

    func testPaths() {
        XCTAssertEqual(ManifestNode.path("", "spec"), "spec")
        XCTAssertEqual(ManifestNode.path("spec", "containers"), "spec.containers")
        XCTAssertEqual(ManifestNode.path("metadata.labels", "team/app"), "metadata.labels.team/app")
        XCTAssertEqual(ManifestNode.path("metadata.labels", "app.kubernetes.io/name"), #"metadata.labels["app.kubernetes.io/name"]"#)
        XCTAssertEqual(ManifestNode.path("x", #"a "b" c"#), #"x["a \"b\" c"]"#)
        XCTAssertEqual(ManifestNode.path("x", ""), #"x[""]"#)
    }
}
