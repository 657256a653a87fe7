import CCap
import Foundation
import Glibc
import PodshimSystem

/// Capability names and numbers (through libcap), the default set, and containerd's add/drop rules.
public enum Capabilities {
    /// The number of a capability: `NET_ADMIN`, `CAP_NET_ADMIN`, `net_admin` and `cap_net_admin` all
    /// give 12. `nil` for names libcap does not know, for `ALL`, and for bare numbers (`12`), which
    /// libcap would accept but a manifest should not.
    public static func number(named name: String) -> Int32? {
        var lower = name.lowercased()
        if !lower.hasPrefix("cap_") { lower = "cap_" + lower }
        let suffix = lower.utf8.dropFirst(4)
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        func isNameByte(_ byte: UInt8) -> Bool {
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || byte == UInt8(ascii: "_") || isDigit(byte)
        }
        guard !suffix.isEmpty, suffix.allSatisfy(isNameByte), !suffix.allSatisfy(isDigit) else { return nil }
        var value: cap_value_t = 0
        guard cap_from_name(lower, &value) == 0, value >= 0, value < 64 else { return nil }
        return Int32(value)
    }

    /// The name of capability `number` in upper case (`CAP_NET_ADMIN`). A number libcap has no name
    /// for comes back as libcap spells it, the bare number (`"41"`).
    public static func name(of number: Int32) -> String {
        guard let cName = cap_to_name(cap_value_t(number)) else { return String(number) }
        defer { _ = cap_free(cName) }
        return String(cString: cName).uppercased()
    }

    /// The highest capability number the running kernel knows (`/proc/sys/kernel/cap_last_cap`);
    /// libcap's highest when that file cannot be read.
    public static let lastCapability: Int32 = {
        if let text = readSmallFile("/proc/sys/kernel/cap_last_cap"),
           let value = Int32(text.trimmingWhitespace()), value >= 0, value < 64 {
            return value
        }
        return min(Int32(cap_max_bits()) - 1, 63)
    }()

    /// Every capability from 0 through ``lastCapability``: what a privileged container gets.
    public static var all: CapabilitySet {
        CapabilitySet(numbers: 0...lastCapability)
    }

    /// The permitted set of this process (`CapPrm` in /proc/self/status): a child can be given
    /// no capability outside it (capset fails with EPERM), so "privileged" means all of these.
    public static var held: CapabilitySet {
        // Unreadable: all, and a capset beyond what is held then fails loudly (EPERM).
        let status = (try? FileSystem.readKernelFile("/proc/self/status")) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix("CapPrm:") {
            let hex = line.dropFirst("CapPrm:".count).trimmingCharacters(in: .whitespaces)
            if let mask = UInt64(hex, radix: 16) { return CapabilitySet(rawValue: mask) }
        }
        return all
    }

    /// The 14 capabilities containerd and Docker give a container that asks for nothing.
    public static let defaultNames: [String] = [
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
    ]

    /// ``defaultNames`` as a set.
    public static let defaultSet: CapabilitySet = CapabilitySet(numbers: defaultNames.compactMap { number(named: $0) })

    /// A container's capabilities from its `add` and `drop` lists, by containerd's rules:
    /// start from ``defaultSet``, or from nothing when `drop` holds `ALL` (any case); add each of
    /// `add` (`ALL` adds ``all``); then remove each of `drop` other than `ALL`.
    /// Names may be written with or without `CAP_`, in any case.
    public static func resolve(add: [String], drop: [String]) throws(CapabilityError) -> CapabilitySet {
        func isAll(_ name: String) -> Bool { name.uppercased() == "ALL" }
        func lookUp(_ name: String, list: String, index: Int) throws(CapabilityError) -> Int32 {
            guard let number = number(named: name) else {
                throw CapabilityError(list: list, index: index, name: name)
            }
            return number
        }

        // Resolve every name first, so the first unknown one is reported whatever the lists say.
        var added: [Int32] = []
        var addsAll = false
        for (index, name) in add.enumerated() {
            if isAll(name) { addsAll = true; continue }
            added.append(try lookUp(name, list: "add", index: index))
        }
        var dropped: [Int32] = []
        var dropsAll = false
        for (index, name) in drop.enumerated() {
            if isAll(name) { dropsAll = true; continue }
            dropped.append(try lookUp(name, list: "drop", index: index))
        }

        var set = dropsAll ? CapabilitySet.empty : defaultSet
        if addsAll { set = set.union(all) }
        for number in added { set.insert(number) }
        for number in dropped { set.remove(number) }
        return set
    }
}

/// The whole of a small file (procfs, sysfs), or nil.
func readSmallFile(_ path: String, limit: Int = 4096) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: limit)
    var count = 0
    while count < limit {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, limit - count) }
        if n < 0 {
            if errno == EINTR { continue }
            return nil
        }
        if n == 0 { break }
        count += n
    }
    return String(decoding: buffer.prefix(count), as: UTF8.self)
}

extension String {
    func trimmingWhitespace() -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
    }
}
