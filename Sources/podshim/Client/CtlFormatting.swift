import Foundation
import PodshimCRI

/// Pure helpers behind `podshim ctl`'s output: tables, short ids, ages, state names, sizes,
/// label selectors, id-prefix resolution and JSON indentation. Nothing here talks to the daemon.
enum CtlFormat {
    /// Ids are shown this wide in tables (the full id is always accepted as input).
    static let shortIDLength = 13

    // MARK: Ids

    /// The first 13 characters of an id; an image id loses its `sha256:` first.
    static func shortID(_ id: String) -> String {
        var id = Substring(id)
        if id.hasPrefix("sha256:") { id = id.dropFirst("sha256:".count) }
        return String(id.prefix(shortIDLength))
    }

    /// A full podshim id: 64 lowercase hexadecimal characters. Anything else is taken as a prefix.
    static func isFullID(_ candidate: String) -> Bool {
        candidate.utf8.count == 64 && candidate.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }
    }

    /// Resolves `given` against the ids that exist: an exact id wins, otherwise `given` must be
    /// the prefix of exactly one id. `kind` names the thing in errors ("pod", "container").
    static func resolve(_ given: String, among ids: [String], kind: String) throws(CtlError) -> String {
        guard !given.isEmpty else { throw CtlError.usage("an empty \(kind) id matches nothing") }
        if ids.contains(given) { return given }
        let matches = ids.filter { $0.hasPrefix(given) }
        switch matches.count {
        case 1:
            return matches[0]
        case 0:
            throw CtlError.notFound("no \(kind) has an id starting with \"\(given)\"")
        default:
            let shown = matches.sorted().prefix(5).map(shortID).joined(separator: ", ")
            let more = matches.count > 5 ? ", …" : ""
            throw CtlError.usage("\"\(given)\" is ambiguous: \(matches.count) \(kind)s match (\(shown)\(more)); give more of the id")
        }
    }

    // MARK: Tables

    /// Left-aligned columns separated by three spaces; the last column is not padded.
    /// Returns one string per line (header first), without newlines.
    static func table(header: [String], rows: [[String]]) -> [String] {
        let all = [header] + rows
        let columns = all.map(\.count).max() ?? 0
        var widths = [Int](repeating: 0, count: columns)
        for row in all {
            for (index, cell) in row.enumerated() { widths[index] = max(widths[index], cell.count) }
        }
        return all.map { row in
            var line = ""
            for (index, cell) in row.enumerated() {
                if index == row.count - 1 {
                    line += cell
                } else {
                    line += cell + String(repeating: " ", count: widths[index] - cell.count + 3)
                }
            }
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }
    }

    /// `Key:   value` lines with the values aligned.
    static func pairs(_ pairs: [(String, String)]) -> [String] {
        let width = pairs.map { $0.0.count }.max() ?? 0
        return pairs.map { key, value in
            key + ":" + String(repeating: " ", count: width - key.count + 2) + value
        }
    }

    // MARK: Times

    /// How long ago a CRI timestamp (nanoseconds since the epoch) was, e.g. "12 seconds ago".
    /// Zero (unset) gives "-"; a time in the future (clock skew) gives "Just now".
    static func age(nanoseconds: Int64, now: Date) -> String {
        guard nanoseconds > 0 else { return "-" }
        let then = Double(nanoseconds) / 1e9
        let seconds = Int((now.timeIntervalSince1970 - then).rounded(.down))
        if seconds < 1 { return "Just now" }
        func ago(_ n: Int, _ unit: String) -> String { "\(n) \(unit)\(n == 1 ? "" : "s") ago" }
        switch seconds {
        case ..<60: return ago(seconds, "second")
        case ..<3600: return ago(seconds / 60, "minute")
        case ..<86_400: return ago(seconds / 3600, "hour")
        case ..<(14 * 86_400): return ago(seconds / 86_400, "day")
        case ..<(60 * 86_400): return ago(seconds / (7 * 86_400), "week")
        case ..<(730 * 86_400): return ago(seconds / (30 * 86_400), "month")
        default: return ago(seconds / (365 * 86_400), "year")
        }
    }

    /// A CRI timestamp as local wall-clock time with milliseconds, e.g. "2025-03-01 14:02:07.513".
    static func wallClock(nanoseconds: Int64, timeZone: TimeZone = .current) -> String {
        guard nanoseconds > 0 else { return "-" }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let seconds = nanoseconds / 1_000_000_000
        let millis = Int((nanoseconds % 1_000_000_000) / 1_000_000)
        let parts = calendar.dateComponents(
            [.year, .month, .day, .hour, .minute, .second], from: Date(timeIntervalSince1970: TimeInterval(seconds)))
        func pad(_ value: Int?, _ width: Int) -> String {
            let text = String(value ?? 0)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(pad(parts.year, 4))-\(pad(parts.month, 2))-\(pad(parts.day, 2)) "
            + "\(pad(parts.hour, 2)):\(pad(parts.minute, 2)):\(pad(parts.second, 2)).\(pad(millis, 3))"
    }

    // MARK: States

    static func podState(_ state: Runtime_V1_PodSandboxState) -> String {
        switch state {
        case .sandboxReady: return "Ready"
        case .sandboxNotready: return "NotReady"
        case .UNRECOGNIZED(let value): return "Unknown(\(value))"
        }
    }

    static func containerState(_ state: Runtime_V1_ContainerState) -> String {
        switch state {
        case .containerCreated: return "Created"
        case .containerRunning: return "Running"
        case .containerExited: return "Exited"
        case .containerUnknown: return "Unknown"
        case .UNRECOGNIZED(let value): return "Unknown(\(value))"
        }
    }

    static func eventType(_ type: Runtime_V1_ContainerEventType) -> String {
        switch type {
        case .containerCreatedEvent: return "Created"
        case .containerStartedEvent: return "Started"
        case .containerStoppedEvent: return "Stopped"
        case .containerDeletedEvent: return "Deleted"
        case .UNRECOGNIZED(let value): return "Unknown(\(value))"
        }
    }

    // MARK: Sizes and durations

    /// Bytes in binary units with one decimal, e.g. "512B", "4.2MiB".
    static func bytes(_ count: UInt64) -> String {
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        guard count >= 1024 else { return "\(count)B" }
        var value = Double(count) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return String(format: "%.1f%@", value, units[unit])
    }

    /// Nanoseconds of CPU time, e.g. "850µs", "152ms", "3.41s", "2m05s", "3h07m".
    static func cpuTime(nanoseconds: UInt64) -> String {
        switch nanoseconds {
        case ..<1_000: return "\(nanoseconds)ns"
        case ..<1_000_000: return "\(nanoseconds / 1_000)µs"
        case ..<1_000_000_000: return "\(nanoseconds / 1_000_000)ms"
        case ..<60_000_000_000: return String(format: "%.2fs", Double(nanoseconds) / 1e9)
        default:
            let seconds = nanoseconds / 1_000_000_000
            if seconds < 3600 { return String(format: "%dm%02ds", Int(seconds / 60), Int(seconds % 60)) }
            return String(format: "%dh%02dm", Int(seconds / 3600), Int((seconds % 3600) / 60))
        }
    }

    // MARK: Labels

    /// `k=v` strings to a label selector. A key may not be empty and may appear only once.
    static func labelSelector(_ pairs: [String]) throws(CtlError) -> [String: String] {
        var selector: [String: String] = [:]
        for pair in pairs {
            guard let equals = pair.firstIndex(of: "=") else {
                throw CtlError.usage("--label \"\(pair)\": expected key=value")
            }
            let key = String(pair[..<equals])
            let value = String(pair[pair.index(after: equals)...])
            guard !key.isEmpty else { throw CtlError.usage("--label \"\(pair)\": the key is empty") }
            if let previous = selector[key], previous != value {
                throw CtlError.usage("--label \(key) is given twice with different values")
            }
            selector[key] = value
        }
        return selector
    }

    /// `true` when every pair of `selector` is among `labels`.
    static func labels(_ labels: [String: String], match selector: [String: String]) -> Bool {
        selector.allSatisfy { labels[$0.key] == $0.value }
    }

    // MARK: Status codes

    /// The canonical gRPC name of a status code's numeric value ("NotFound", "Internal", …).
    static func statusCodeName(_ rawValue: Int) -> String {
        let names = [
            "OK", "Cancelled", "Unknown", "InvalidArgument", "DeadlineExceeded", "NotFound", "AlreadyExists",
            "PermissionDenied", "ResourceExhausted", "FailedPrecondition", "Aborted", "OutOfRange", "Unimplemented",
            "Internal", "Unavailable", "DataLoss", "Unauthenticated",
        ]
        return names.indices.contains(rawValue) ? names[rawValue] : "Code(\(rawValue))"
    }

    // MARK: JSON

    /// Indents compact JSON (as SwiftProtobuf writes it) by two spaces per level, without
    /// re-parsing it, so numbers and strings come out byte for byte as they went in.
    static func prettyJSON(_ compact: String) -> String {
        var out = ""
        var depth = 0
        var inString = false
        var escaped = false
        let characters = Array(compact)
        var index = 0
        func newline() { out += "\n" + String(repeating: "  ", count: depth) }
        while index < characters.count {
            let character = characters[index]
            if inString {
                out.append(character)
                if escaped {
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == "\"" {
                    inString = false
                }
                index += 1
                continue
            }
            switch character {
            case "\"":
                inString = true
                out.append(character)
            case "{", "[":
                let closing: Character = character == "{" ? "}" : "]"
                var next = index + 1
                while next < characters.count, characters[next].isWhitespace { next += 1 }
                if next < characters.count, characters[next] == closing {
                    out += String(character) + String(closing)
                    index = next
                } else {
                    out.append(character)
                    depth += 1
                    newline()
                }
            case "}", "]":
                depth = max(0, depth - 1)
                newline()
                out.append(character)
            case ",":
                out.append(character)
                newline()
            case ":":
                out += ": "
            case " ", "\n", "\t", "\r":
                break
            default:
                out.append(character)
            }
            index += 1
        }
        return out
    }
}
