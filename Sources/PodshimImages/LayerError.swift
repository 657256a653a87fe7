import PodshimSystem

/// Why a layer blob could not be read or applied (``LayerApplier``). Every case about one tar
/// member names it as stored in the archive (non-printable bytes escaped); the caller adds which
/// layer it was.
public enum LayerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The gzip or zstd stream is damaged, or ends before its end.
    case corruptStream(encoding: LayerEncoding, detail: String)
    /// The tar structure is wrong at byte `offset` of the uncompressed stream: a bad header
    /// checksum, a field that does not parse, a malformed PAX record, data that ends mid-member.
    /// `member` is the member concerned, or the last good one (`after: true`).
    case malformedArchive(member: String?, after: Bool, offset: UInt64, detail: String)
    /// A member that would leave the layer directory or misuses a reserved name: `..` above the
    /// root, a parent that is a symbolic link, a hard link to outside, a bare `.wh.`.
    case unsafeMember(member: String, reason: String)
    /// A member podshim does not apply: sparse files, multi-volume parts, unknown types.
    case unsupportedMember(member: String, reason: String)
    /// A limit was reached: a header or name too long, too many bytes or members.
    case limitExceeded(member: String?, detail: String)
    /// A system call failed while applying `member` (nil: reading the blob, opening the directory).
    case system(member: String?, SystemError)
    /// What was read does not hash to what the caller expected (`what`: `DiffID` or `digest`).
    case digestMismatch(what: String, expected: String, actual: String)
    /// The directory to apply into is not empty: a layer goes into a fresh directory of its own.
    case directoryNotEmpty(String)

    public var description: String {
        switch self {
        case .corruptStream(let encoding, let detail):
            return "layer \(encoding.rawValue) stream is corrupt: \(detail)"
        case .malformedArchive(let member, let after, let offset, let detail):
            let place = member.map { after ? "after member \"\($0)\"" : "member \"\($0)\"" } ?? "at its start"
            return "layer tar is malformed \(place) (byte \(offset)): \(detail)"
        case .unsafeMember(let member, let reason):
            return "layer member \"\(member)\" refused: \(reason)"
        case .unsupportedMember(let member, let reason):
            return "layer member \"\(member)\" is not supported: \(reason)"
        case .limitExceeded(let member, let detail):
            return (member.map { "layer member \"\($0)\": " } ?? "layer: ") + detail
        case .system(let member, let error):
            return (member.map { "layer member \"\($0)\": " } ?? "layer: ") + error.description
        case .digestMismatch(let what, let expected, let actual):
            return "layer \(what) is \(actual), expected \(expected)"
        case .directoryNotEmpty(let path):
            return "layer directory \(path) is not empty"
        }
    }

    /// A member name for messages: UTF-8 where it is, `\xNN` for other bytes and control
    /// characters, cut at 256 bytes.
    static func display(_ name: [UInt8]) -> String {
        var text = ""
        let shown = name.prefix(256)
        var index = shown.startIndex
        while index < shown.endIndex {
            let byte = shown[index]
            if byte >= 0x20 && byte < 0x7f && byte != UInt8(ascii: "\\") && byte != UInt8(ascii: "\"") {
                text.unicodeScalars.append(Unicode.Scalar(byte))
                index += 1
                continue
            }
            if byte >= 0x80 {
                // A whole UTF-8 sequence stays readable; a stray byte is escaped.
                let length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1
                if length > 1, index + length <= shown.endIndex,
                   let scalar = String(validating: shown[index..<index + length], as: UTF8.self) {
                    text += scalar
                    index += length
                    continue
                }
            }
            text += byte == UInt8(ascii: "\\") ? "\\\\" : byte == UInt8(ascii: "\"") ? "\\\"" : "\\x" + hex(byte)
            index += 1
        }
        return name.count > shown.count ? text + "…" : text
    }

    private static func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(byte >> 4)], digits[Int(byte & 0x0f)]])
    }
}

extension LayerError: PodshimErrorConvertible {
    public var podshimError: PodshimError {
        switch self {
        case .system(let member, let error):
            var converted = error.podshimError
            if let member { converted.subject = member }
            converted.message = description
            return converted
        case .limitExceeded(let member, _):
            return PodshimError(.resourceExhausted, operation: "apply layer", subject: member, message: description)
        case .unsafeMember(let member, _), .unsupportedMember(let member, _):
            return PodshimError(.failedPrecondition, operation: "apply layer", subject: member, message: description)
        case .corruptStream, .malformedArchive, .digestMismatch, .directoryNotEmpty:
            return PodshimError(.failedPrecondition, operation: "apply layer", message: description)
        }
    }
}
