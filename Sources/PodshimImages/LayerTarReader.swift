import Glibc

/// One member of a layer tarball, its metadata merged from the ustar header, GNU long name and
/// link records (`L`, `K`) and PAX headers (`x`, and `g` for what later members inherit).
public struct TarEntry: Equatable, Sendable {
    public enum Kind: Equatable, Sendable {
        case regular, hardLink, symbolicLink, characterDevice, blockDevice, directory, fifo
    }

    /// Seconds and nanoseconds since the epoch (before it when negative).
    public struct Time: Equatable, Sendable {
        public var seconds: Int64
        public var nanoseconds: Int32

        public init(seconds: Int64, nanoseconds: Int32 = 0) {
            self.seconds = seconds
            self.nanoseconds = nanoseconds
        }
    }

    /// The name as stored (bytes: names need not be UTF-8), before any cleaning.
    public var name: [UInt8]
    /// The target of a symbolic or hard link.
    public var linkName: [UInt8]
    public var kind: Kind
    /// The permission bits, 0o7777 (setuid, setgid, sticky included).
    public var mode: UInt32
    public var uid: Int64
    public var gid: Int64
    /// Bytes of data that follow (regular files only; 0 for the other kinds).
    public var size: Int64
    public var modificationTime: Time
    /// From PAX `atime` only; nil otherwise.
    public var accessTime: Time?
    public var deviceMajor: UInt32
    public var deviceMinor: UInt32
    /// `SCHILY.xattr.<name>` records, by name, in no particular order.
    public var xattrs: [String: [UInt8]]

    /// The name for messages.
    public var displayName: String { LayerError.display(name) }
}

/// What a tar header may hold (registry.md §4; beyond them a member is refused, not truncated).
public struct TarLimits: Sendable {
    /// Most bytes of one PAX header (`x` or `g`), and of all extended records before a member.
    public var extendedHeader = 1 << 20
    /// Most bytes of a name or link target (PATH_MAX).
    public var name = 4096

    public init() {}
}

/// Reads a tar stream member by member, never holding more than one header and its extended
/// records in memory: ``next()`` returns the next member (nil after the end-of-archive block),
/// then ``readData(into:)`` streams its data; what the caller does not read is skipped.
///
/// Formats: ustar (with its `prefix`), old v7, GNU (`L` long names, `K` long link names,
/// base-256 numbers), PAX (`path`, `linkpath`, `size`, `uid`, `gid`, `mtime`, `atime`,
/// `SCHILY.xattr.*`; `g` records apply to every later member). Refused: sparse files (GNU `S`,
/// PAX `GNU.sparse.*`), multi-volume parts and unknown types. Types 1–6 carry no data whatever
/// their size field says (as Go's archive/tar reads them, hence Docker and containerd).
public struct TarReader<Input: LayerByteSource> {
    static var blockSize: Int { 512 }

    private var input: Input
    private let limits: TarLimits
    /// Bytes of the uncompressed stream consumed.
    public private(set) var offset: UInt64 = 0
    /// Data bytes of the current member not read yet, and the padding after them.
    private var remaining: Int64 = 0
    private var padding = 0
    /// PAX `g` records in force.
    private var globals: [String: [UInt8]] = [:]
    /// The last member returned, for messages about what follows it.
    private var lastMember: String?
    private var ended = false

    public init(_ input: Input, limits: TarLimits = TarLimits()) {
        self.input = input
        self.limits = limits
    }

    /// The next member, or nil once the end-of-archive block has been read. An archive that
    /// ends without that block is truncated and throws.
    public mutating func next() throws(LayerError) -> TarEntry? {
        guard !ended else { return nil }
        try skipData()
        var longName: [UInt8]?
        var longLink: [UInt8]?
        var extended: [String: [UInt8]] = [:]
        var extendedBytes = 0
        var pendingMeta = false
        while true {
            let headerOffset = offset
            let header = try readHeader()
            if header.allSatisfy({ $0 == 0 }) {
                guard !pendingMeta else {
                    throw malformed(headerOffset, "the archive ends after an extended header, without its member")
                }
                ended = true
                return nil
            }
            try verifyChecksum(header, at: headerOffset)
            let type = header[156]
            let size = try number(header, 124, 12, field: "size", at: headerOffset)
            guard size >= 0 else { throw malformed(headerOffset, "negative size \(size)") }
            switch type {
            case UInt8(ascii: "L"), UInt8(ascii: "K"):
                guard size <= Int64(limits.name + 1) else {
                    throw .limitExceeded(member: nil, detail: "GNU long \(type == UInt8(ascii: "L") ? "name" : "link name") "
                                         + "of \(size) bytes (at most \(limits.name)) at byte \(headerOffset)\(place)")
                }
                var value = try readAll(Int(size), at: headerOffset)
                while value.last == 0 { value.removeLast() }
                if type == UInt8(ascii: "L") { longName = value } else { longLink = value }
                pendingMeta = true
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                extendedBytes += Int(clamping: size)
                guard size <= Int64(limits.extendedHeader), extendedBytes <= limits.extendedHeader else {
                    throw .limitExceeded(member: nil, detail: "PAX header of \(size) bytes (at most \(limits.extendedHeader)) "
                                         + "at byte \(headerOffset)\(place)")
                }
                let records = try parsePAX(try readAll(Int(size), at: headerOffset), at: headerOffset)
                if type == UInt8(ascii: "x") {
                    extended.merge(records) { $1 }
                    pendingMeta = true
                } else {
                    for (key, value) in records {
                        globals[key] = value.isEmpty ? nil : value  // an empty value deletes
                    }
                }
            case UInt8(ascii: "V"):
                // A GNU volume label: names the archive, not a file.
                try skip(size, at: headerOffset)
            default:
                var entry = try makeEntry(header, type: type, size: size, longName: longName, longLink: longLink,
                                          extended: extended, at: headerOffset)
                remaining = entry.size
                padding = Int((Int64(Self.blockSize) - entry.size % Int64(Self.blockSize)) % Int64(Self.blockSize))
                if entry.kind != .regular, type != UInt8(ascii: "D") {
                    // Header-only types: no data follows, whatever the size field says.
                    remaining = 0
                    padding = 0
                }
                if entry.kind != .regular { entry.size = 0 }
                lastMember = entry.displayName
                return entry
            }
        }
    }

    /// Reads up to `buffer.count` bytes of the current member's data; 0 at its end.
    public mutating func readData(into buffer: UnsafeMutableRawBufferPointer) throws(LayerError) -> Int {
        guard remaining > 0, buffer.count > 0 else { return 0 }
        let wanted = Int(min(Int64(buffer.count), remaining))
        let count = try input.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[..<wanted]))
        guard count > 0 else {
            throw .malformedArchive(member: lastMember, after: false, offset: offset,
                                    detail: "the archive ends inside the member's data, \(remaining) bytes short")
        }
        offset += UInt64(count)
        remaining -= Int64(count)
        return count
    }

    // MARK: Blocks

    /// Skips the rest of the current member's data and its padding.
    private mutating func skipData() throws(LayerError) {
        guard remaining > 0 || padding > 0 else { return }
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { scratch.deallocate() }
        while remaining > 0 { _ = try readData(into: scratch) }
        if padding > 0 {
            let count = padding
            padding = 0
            try readExactly(into: UnsafeMutableRawBufferPointer(rebasing: scratch[..<count]), what: "padding")
        }
    }

    private mutating func skip(_ size: Int64, at headerOffset: UInt64) throws(LayerError) {
        remaining = size
        padding = Int((Int64(Self.blockSize) - size % Int64(Self.blockSize)) % Int64(Self.blockSize))
        try skipData()
    }

    /// One header block. The stream ending exactly here is a truncated archive (no end block).
    private mutating func readHeader() throws(LayerError) -> [UInt8] {
        try readBytes(Self.blockSize, what: "a header")
    }

    private mutating func readBytes(_ count: Int, what: String) throws(LayerError) -> [UInt8] {
        let raw = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
        defer { raw.deallocate() }
        try readExactly(into: raw, what: what)
        return Array(raw)
    }

    private mutating func readExactly(into buffer: UnsafeMutableRawBufferPointer, what: String) throws(LayerError) {
        var filled = 0
        while filled < buffer.count {
            let count = try input.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            guard count > 0 else {
                let detail = filled == 0 && what == "a header"
                    ? "the archive ends without its end-of-archive block (truncated)"
                    : "the archive ends inside \(what)"
                throw .malformedArchive(member: lastMember, after: true, offset: offset, detail: detail)
            }
            filled += count
            offset += UInt64(count)
        }
    }

    /// The `size` bytes of an extended header's data, and its padding.
    private mutating func readAll(_ size: Int, at headerOffset: UInt64) throws(LayerError) -> [UInt8] {
        let data = try readBytes(size, what: "an extended header")
        padding = (Self.blockSize - size % Self.blockSize) % Self.blockSize
        try skipData()
        return data
    }

    /// ` after member "X"`, or nothing before the first member.
    private var place: String {
        lastMember.map { " after member \"\($0)\"" } ?? ""
    }

    private func malformed(_ at: UInt64, _ detail: String) -> LayerError {
        .malformedArchive(member: lastMember, after: true, offset: at, detail: detail)
    }

    // MARK: Header fields

    private func verifyChecksum(_ header: [UInt8], at headerOffset: UInt64) throws(LayerError) {
        let stored = try number(header, 148, 8, field: "checksum", at: headerOffset)
        var unsigned: Int64 = 0
        var signed: Int64 = 0
        for (index, byte) in header.enumerated() {
            let value = (148..<156).contains(index) ? UInt8(ascii: " ") : byte
            unsigned += Int64(value)
            signed += Int64(Int8(bitPattern: value))
        }
        guard stored == unsigned || stored == signed else {
            throw malformed(headerOffset, "header checksum \(stored) does not match its content (\(unsigned)): not a tar archive, or corrupt")
        }
    }

    /// A numeric field: octal digits (leading and trailing spaces and NULs ignored), or GNU
    /// base-256 when the first byte has its high bit set.
    private func number(_ header: [UInt8], _ start: Int, _ length: Int, field: String,
                        at headerOffset: UInt64) throws(LayerError) -> Int64 {
        let bytes = header[start..<start + length]
        if let first = bytes.first, first & 0x80 != 0 {
            guard let value = Self.base256(bytes) else {
                throw malformed(headerOffset, "\(field) field overflows")
            }
            return value
        }
        let trimmed = bytes.drop { $0 == 0x20 || $0 == 0 }.reversed().drop { $0 == 0x20 || $0 == 0 }.reversed()
        var value: Int64 = 0
        for byte in trimmed {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "7"), value >> 60 == 0 else {
                throw malformed(headerOffset, "\(field) field \"\(LayerError.display(Array(bytes)))\" is not an octal number")
            }
            value = value << 3 | Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// GNU's base-256: big-endian two's complement, the first byte's top bit the marker.
    static func base256(_ bytes: ArraySlice<UInt8>) -> Int64? {
        let negative = bytes.first! & 0x40 != 0
        var value: UInt64 = 0
        for (index, byte) in bytes.enumerated() {
            var digit = negative ? ~byte : byte
            if index == 0 { digit &= 0x7f }
            guard value >> 56 == 0 else { return nil }
            value = value << 8 | UInt64(digit)
        }
        guard value >> 63 == 0 else { return nil }
        return negative ? ~Int64(value) : Int64(value)
    }

    /// A NUL-terminated string field.
    private static func string(_ header: [UInt8], _ start: Int, _ length: Int) -> [UInt8] {
        let field = header[start..<start + length]
        return Array(field.prefix { $0 != 0 })
    }

    private mutating func makeEntry(_ header: [UInt8], type: UInt8, size headerSize: Int64,
                                    longName: [UInt8]?, longLink: [UInt8]?, extended: [String: [UInt8]],
                                    at headerOffset: UInt64) throws(LayerError) -> TarEntry {
        let magic = Array(header[257..<263])
        let isUstar = magic == Array("ustar\0".utf8)
        let isGNU = magic == Array("ustar ".utf8)
        var name = Self.string(header, 0, 100)
        if isUstar {
            let prefix = Self.string(header, 345, 155)
            if !prefix.isEmpty { name = prefix + [UInt8(ascii: "/")] + name }
        }
        name = extended["path"] ?? longName ?? name
        let display = LayerError.display(name)
        guard !name.contains(0) else { throw .unsafeMember(member: display, reason: "its name contains a NUL byte") }
        guard name.count <= limits.name else {
            throw .limitExceeded(member: display, detail: "a name of \(name.count) bytes (at most \(limits.name))")
        }
        let linkName = extended["linkpath"] ?? longLink ?? Self.string(header, 157, 100)
        guard !linkName.contains(0) else { throw .unsafeMember(member: display, reason: "its link target contains a NUL byte") }
        guard linkName.count <= limits.name else {
            throw .limitExceeded(member: display, detail: "a link target of \(linkName.count) bytes (at most \(limits.name))")
        }
        if extended.keys.contains(where: { $0.hasPrefix("GNU.sparse.") }) || type == UInt8(ascii: "S") {
            throw .unsupportedMember(member: display, reason: "sparse files are not supported")
        }

        let kind: TarEntry.Kind
        switch type {
        case 0:
            // Old archives mark directories with a trailing slash only.
            kind = name.last == UInt8(ascii: "/") ? .directory : .regular
        case UInt8(ascii: "0"), UInt8(ascii: "7"): kind = .regular
        case UInt8(ascii: "1"): kind = .hardLink
        case UInt8(ascii: "2"): kind = .symbolicLink
        case UInt8(ascii: "3"): kind = .characterDevice
        case UInt8(ascii: "4"): kind = .blockDevice
        case UInt8(ascii: "5"), UInt8(ascii: "D"): kind = .directory  // D: GNU dump directory
        case UInt8(ascii: "6"): kind = .fifo
        case UInt8(ascii: "M"):
            throw .unsupportedMember(member: display, reason: "multi-volume archives are not supported")
        default:
            let shown = type >= 0x20 && type < 0x7f ? "'\(Character(Unicode.Scalar(type)))'" : "\(type)"
            throw .unsupportedMember(member: display, reason: "unknown type \(shown)")
        }

        let fields = extended.merging(globals) { local, _ in local }
        func pax(_ key: String) throws(LayerError) -> Int64? {
            guard let value = fields[key] else { return nil }
            guard let parsed = Self.decimal(value) else {
                throw .malformedArchive(member: display, after: false, offset: headerOffset,
                                        detail: "PAX \(key)=\"\(LayerError.display(value))\" is not a number")
            }
            return parsed
        }
        func time(_ key: String) throws(LayerError) -> TarEntry.Time? {
            guard let value = fields[key] else { return nil }
            guard let parsed = Self.time(value) else {
                throw .malformedArchive(member: display, after: false, offset: headerOffset,
                                        detail: "PAX \(key)=\"\(LayerError.display(value))\" is not a time")
            }
            return parsed
        }
        let size = try extended["size"] == nil ? headerSize : pax("size")!
        guard size >= 0 else { throw malformed(headerOffset, "negative size \(size)") }
        let mode = try number(header, 100, 8, field: "mode", at: headerOffset)
        var uid = try number(header, 108, 8, field: "uid", at: headerOffset)
        if let value = try pax("uid") { uid = value }
        var gid = try number(header, 116, 8, field: "gid", at: headerOffset)
        if let value = try pax("gid") { gid = value }
        let headerTime = try number(header, 136, 12, field: "mtime", at: headerOffset)
        let modificationTime = try time("mtime") ?? TarEntry.Time(seconds: headerTime)
        let accessTime = try time("atime")
        var major: Int64 = 0, minor: Int64 = 0
        if (isUstar || isGNU) && (kind == .characterDevice || kind == .blockDevice) {
            major = try number(header, 329, 8, field: "devmajor", at: headerOffset)
            minor = try number(header, 337, 8, field: "devminor", at: headerOffset)
            guard (0...Int64(UInt32.max)).contains(major), (0...Int64(UInt32.max)).contains(minor) else {
                throw malformed(headerOffset, "device number \(major):\(minor) out of range")
            }
        }
        var xattrs: [String: [UInt8]] = [:]
        for (key, value) in fields where key.hasPrefix("SCHILY.xattr.") {
            xattrs[String(key.dropFirst("SCHILY.xattr.".count))] = value
        }
        return TarEntry(name: name, linkName: linkName, kind: kind, mode: UInt32(mode & 0o7777), uid: uid, gid: gid,
                        size: size, modificationTime: modificationTime, accessTime: accessTime,
                        deviceMajor: UInt32(major), deviceMinor: UInt32(minor), xattrs: xattrs)
    }

    // MARK: PAX

    /// Records `LENGTH KEY=VALUE\n`, LENGTH counting the whole record. Trailing NULs are allowed.
    private func parsePAX(_ data: [UInt8], at headerOffset: UInt64) throws(LayerError) -> [String: [UInt8]] {
        var records: [String: [UInt8]] = [:]
        var index = 0
        while index < data.count {
            if data[index...].allSatisfy({ $0 == 0 }) { break }
            guard let space = data[index...].prefix(8).firstIndex(of: UInt8(ascii: " ")),
                  let length = Self.decimal(data[index..<space]), length > 0,
                  length <= Int64(data.count - index), space - index < Int(length) else {
                throw malformed(headerOffset, "PAX record at offset \(index) has no valid length")
            }
            let end = index + Int(length)
            guard end - 1 > space + 1, data[end - 1] == UInt8(ascii: "\n"),
                  let equals = data[(space + 1)..<(end - 1)].firstIndex(of: UInt8(ascii: "=")),
                  equals > space + 1 else {
                throw malformed(headerOffset, "PAX record at offset \(index) is not \"LENGTH KEY=VALUE\\n\"")
            }
            guard let key = String(validating: data[(space + 1)..<equals], as: UTF8.self) else {
                throw malformed(headerOffset, "PAX record at offset \(index) has a key that is not UTF-8")
            }
            records[key] = Array(data[(equals + 1)..<(end - 1)])
            index = end
        }
        return records
    }

    /// A non-negative decimal number (at most 18 digits).
    static func decimal(_ bytes: some Collection<UInt8>) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value: Int64 = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// A PAX time: `[-]SECONDS[.FRACTION]`; digits past nanoseconds are dropped.
    static func time(_ bytes: [UInt8]) -> TarEntry.Time? {
        var text = bytes[...]
        let negative = text.first == UInt8(ascii: "-")
        if negative { text = text.dropFirst() }
        let dot = text.firstIndex(of: UInt8(ascii: "."))
        guard let seconds = decimal(text[..<(dot ?? text.endIndex)]) else { return nil }
        var nanoseconds: Int64 = 0
        if let dot {
            let fraction = text[(dot + 1)...]
            guard !fraction.isEmpty, fraction.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                return nil
            }
            let digits = Array(fraction.prefix(9)) + Array(repeating: UInt8(ascii: "0"), count: max(0, 9 - fraction.count))
            nanoseconds = decimal(digits) ?? 0
        }
        guard negative else { return TarEntry.Time(seconds: seconds, nanoseconds: Int32(nanoseconds)) }
        // -1.25 is 1.25 s before the epoch: -2 s + 0.75 s.
        return nanoseconds == 0
            ? TarEntry.Time(seconds: -seconds)
            : TarEntry.Time(seconds: -seconds - 1, nanoseconds: Int32(1_000_000_000 - nanoseconds))
    }
}
