import PodshimSecurity
import XCTest

final class CapabilitiesTests: XCTestCase {
    func testNumberAcceptsBareAndPrefixedNamesInAnyCase() {
        for name in ["NET_ADMIN", "CAP_NET_ADMIN", "net_admin", "cap_net_admin", "Net_Admin", "CAP_net_ADMIN"] {
            XCTAssertEqual(Capabilities.number(named: name), 12, name)
        }
        XCTAssertEqual(Capabilities.number(named: "CHOWN"), 0)
        XCTAssertEqual(Capabilities.number(named: "CAP_SYS_ADMIN"), 21)
        XCTAssertEqual(Capabilities.number(named: "checkpoint_restore"), 40)
    }

    func testNumberRejectsUnknownNamesAllAndNumbers() {
        for name in ["FOO", "CAP_FOO", "ALL", "all", "", "CAP_", "12", "CAP_12", "NET ADMIN", "net-admin", "CAP_CAP_CHOWN"] {
            XCTAssertNil(Capabilities.number(named: name), name)
        }
    }

    func testNameIsUpperCaseWithPrefix() {
        XCTAssertEqual(Capabilities.name(of: 0), "CAP_CHOWN")
        XCTAssertEqual(Capabilities.name(of: 12), "CAP_NET_ADMIN")
        XCTAssertEqual(Capabilities.name(of: 21), "CAP_SYS_ADMIN")
        XCTAssertEqual(Capabilities.name(of: 40), "CAP_CHECKPOINT_RESTORE")
    }

    func testNamesRoundTrip() {
        for number in 0...Capabilities.lastCapability {
            let name = Capabilities.name(of: number)
            XCTAssertTrue(name.hasPrefix("CAP_"), name)
            XCTAssertEqual(Capabilities.number(named: name), number, name)
            XCTAssertEqual(Capabilities.number(named: String(name.dropFirst(4)).lowercased()), number, name)
        }
    }

    func testLastCapabilityComesFromTheKernel() throws {
        XCTAssertGreaterThanOrEqual(Capabilities.lastCapability, 40)
        let text = try String(contentsOfFile: "/proc/sys/kernel/cap_last_cap", encoding: .utf8)
        XCTAssertEqual(Capabilities.lastCapability, Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)))
    }

    func testAllIsEveryCapabilityUpToTheLast() {
        let all = Capabilities.all
        XCTAssertEqual(all.numbers, Array(0...Capabilities.lastCapability))
        XCTAssertEqual(all.rawValue, (UInt64(1) << UInt64(Capabilities.lastCapability + 1)) - 1)
    }

    func testDefaultSetIsContainerdsFourteen() {
        XCTAssertEqual(
            Set(Capabilities.defaultSet.names),
            [
                "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
                "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
            ])
        XCTAssertEqual(Capabilities.defaultSet.names.count, 14)
        XCTAssertEqual(Capabilities.defaultSet.rawValue, 0x0000_0000_a80425fb)
    }

    func testSetOperationsAndNamesSortedByNumber() {
        var set = CapabilitySet.empty
        XCTAssertTrue(set.isEmpty)
        set.insert(21)
        set.insert(0)
        set.insert(12)
        XCTAssertEqual(set.names, ["CAP_CHOWN", "CAP_NET_ADMIN", "CAP_SYS_ADMIN"])
        XCTAssertTrue(set.contains(12))
        XCTAssertFalse(set.contains(13))
        set.remove(12)
        XCTAssertFalse(set.contains(12))
        XCTAssertEqual(set.rawValue, 1 | 1 << 21)
        set.insert(64)  // not representable: ignored
        set.insert(-1)
        XCTAssertEqual(set.rawValue, 1 | 1 << 21)
        XCTAssertFalse(set.contains(-1))
        XCTAssertEqual(set.description, "[CAP_CHOWN, CAP_SYS_ADMIN]")
    }

    func testResolveWithNothingIsTheDefaultSet() throws {
        XCTAssertEqual(try Capabilities.resolve(add: [], drop: []), Capabilities.defaultSet)
    }

    func testResolveAddsAndDrops() throws {
        let set = try Capabilities.resolve(add: ["NET_ADMIN"], drop: ["CHOWN"])
        var expected = Capabilities.defaultSet
        expected.insert(12)
        expected.remove(0)
        XCTAssertEqual(set, expected)
        XCTAssertTrue(set.contains(12))
        XCTAssertFalse(set.contains(0))
    }

    func testResolveAcceptsPrefixAndCase() throws {
        let set = try Capabilities.resolve(add: ["cap_sys_time", "Sys_Nice"], drop: ["CAP_KILL", "mknod"])
        XCTAssertTrue(set.contains(25))
        XCTAssertTrue(set.contains(23))
        XCTAssertFalse(set.contains(5))
        XCTAssertFalse(set.contains(27))
    }

    func testDropAllThenAddOne() throws {
        let set = try Capabilities.resolve(add: ["NET_BIND_SERVICE"], drop: ["ALL"])
        XCTAssertEqual(set.names, ["CAP_NET_BIND_SERVICE"])
        XCTAssertEqual(try Capabilities.resolve(add: [], drop: ["all"]), .empty)
    }

    func testAddAll() throws {
        XCTAssertEqual(try Capabilities.resolve(add: ["ALL"], drop: []), Capabilities.all)
        var expected = Capabilities.all
        expected.remove(21)
        XCTAssertEqual(try Capabilities.resolve(add: ["all"], drop: ["SYS_ADMIN"]), expected)
    }

    func testDropWinsOverAdd() throws {
        XCTAssertFalse(try Capabilities.resolve(add: ["NET_ADMIN"], drop: ["NET_ADMIN"]).contains(12))
    }

    func testUnknownNameInAdd() {
        let error = thrownError { () throws(CapabilityError) in try Capabilities.resolve(add: ["NET_ADMIN", "FOO"], drop: []) }
        XCTAssertEqual(error, CapabilityError(list: "add", index: 1, name: "FOO"))
        XCTAssertEqual(error?.description, #"unknown capability "FOO""#)
    }

    func testUnknownNameInDrop() {
        let error = thrownError { () throws(CapabilityError) in
            try Capabilities.resolve(add: [], drop: ["CHOWN", "KILL", "cap_bogus"])
        }
        XCTAssertEqual(error?.list, "drop")
        XCTAssertEqual(error?.index, 2)
        XCTAssertEqual(error?.name, "cap_bogus")
        XCTAssertEqual(error?.description, #"unknown capability "cap_bogus""#)
    }

    func testUnknownNameIsReportedEvenWhenAllIsDropped() {
        let error = thrownError { () throws(CapabilityError) in try Capabilities.resolve(add: ["12"], drop: ["ALL"]) }
        XCTAssertEqual(error, CapabilityError(list: "add", index: 0, name: "12"))
    }
}
