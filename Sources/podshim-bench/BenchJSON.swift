/// A JSON value whose objects keep their keys in the order written, and its writer: the report
/// reads in the order the benchmark ran.
indirect enum BenchJSON: Sendable {
    case null
    case bool(Bool)
    case int(Int64)
    case number(Double)
    case string(String)
    case array([BenchJSON])
    case object([(String, BenchJSON)])

    /// Nanoseconds as microseconds to 0.1.
    static func microseconds(_ nanoseconds: UInt64) -> BenchJSON {
        .number((Double(nanoseconds) / 100).rounded() / 10)
    }

    /// Nanoseconds as seconds to the millisecond.
    static func seconds(_ nanoseconds: UInt64) -> BenchJSON {
        .number((Double(nanoseconds) / 1_000_000).rounded() / 1000)
    }

    /// Indented two spaces a level; an object or array of scalars stays on one line.
    func rendered() -> String {
        var out = ""
        write(to: &out, indent: 0)
        return out
    }

    private var isScalar: Bool {
        switch self {
        case .array, .object: false
        default: true
        }
    }

    private func write(to out: inout String, indent: Int) {
        switch self {
        case .null: out += "null"
        case .bool(let value): out += value ? "true" : "false"
        case .int(let value): out += String(value)
        case .number(let value):
            if !value.isFinite {
                out += "null"
            } else if value == value.rounded(), abs(value) < 1e15 {
                out += String(Int64(value))
            } else {
                out += String(value)
            }
        case .string(let value): Self.writeString(value, to: &out)
        case .array(let elements):
            if elements.isEmpty { out += "[]"; return }
            let inline = elements.allSatisfy(\.isScalar)
            out += "["
            for (i, element) in elements.enumerated() {
                if i > 0 { out += inline ? ", " : "," }
                if !inline { Self.newline(&out, indent + 1) }
                element.write(to: &out, indent: indent + 1)
            }
            if !inline { Self.newline(&out, indent) }
            out += "]"
        case .object(let members):
            if members.isEmpty { out += "{}"; return }
            let inline = members.allSatisfy { $0.1.isScalar }
            out += "{"
            for (i, (key, value)) in members.enumerated() {
                if i > 0 { out += inline ? ", " : "," }
                if !inline { Self.newline(&out, indent + 1) }
                Self.writeString(key, to: &out)
                out += ": "
                value.write(to: &out, indent: indent + 1)
            }
            if !inline { Self.newline(&out, indent) }
            out += "}"
        }
    }

    private static func newline(_ out: inout String, _ indent: Int) {
        out += "\n"
        out += String(repeating: "  ", count: indent)
    }

    private static func writeString(_ value: String, to out: inout String) {
        out += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
