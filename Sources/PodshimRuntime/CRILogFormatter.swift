import Glibc

/// Which standard stream a log line came from.
public enum LogStream: String, Sendable {
    case stdout, stderr
}

/// Splits a stream of bytes into CRI log lines: `<RFC3339Nano> <stream> <P|F> <text>\n`.
///
/// A full line (ended by `\n`) is tagged `F`; a line longer than ``maxLineSize`` is cut into `P`
/// (partial) chunks followed by the `F` remainder, as containerd does; what is left when the stream
/// ends is written as `F`. Pure apart from the injected clock.
public struct CRILogFormatter {
    /// containerd's default `max_container_log_line_size`.
    public static let defaultMaxLineSize = 16 * 1024

    public let stream: LogStream
    public let maxLineSize: Int
    private let now: () -> timespec
    private var pending: [UInt8] = []

    /// `now` returns wall-clock time (CLOCK_REALTIME); injected so tests are exact.
    public init(stream: LogStream, maxLineSize: Int = CRILogFormatter.defaultMaxLineSize,
                now: @escaping () -> timespec = CRILogFormatter.realtimeNow) {
        self.stream = stream
        self.maxLineSize = maxLineSize
        self.now = now
    }

    /// One formatted record: the file line and the text it carries (without the newline).
    public struct Record: Equatable {
        public var line: [UInt8]
        public var text: [UInt8]
        public var partial: Bool
    }

    /// Feeds bytes read from the stream; returns the records now complete.
    public mutating func append(_ bytes: some Collection<UInt8>) -> [Record] {
        pending.append(contentsOf: bytes)
        var records: [Record] = []
        var start = pending.startIndex
        while true {
            let window = pending[start...]
            if let newline = window.prefix(maxLineSize + 1).firstIndex(of: UInt8(ascii: "\n")) {
                records.append(record(pending[start..<newline], partial: false))
                start = newline + 1
            } else if window.count > maxLineSize {
                records.append(record(window.prefix(maxLineSize), partial: true))
                start += maxLineSize
            } else {
                break
            }
        }
        pending.removeSubrange(..<start)
        return records
    }

    /// The stream ended: whatever is pending becomes a full line.
    public mutating func finish() -> [Record] {
        guard !pending.isEmpty else { return [] }
        defer { pending.removeAll() }
        return [record(pending[...], partial: false)]
    }

    private func record(_ text: ArraySlice<UInt8>, partial: Bool) -> Record {
        var line = Array(Self.timestamp(now()).utf8)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: stream.rawValue.utf8)
        line.append(contentsOf: partial ? Array(" P ".utf8) : Array(" F ".utf8))
        line.append(contentsOf: text)
        line.append(UInt8(ascii: "\n"))
        return Record(line: line, text: Array(text), partial: partial)
    }

    /// RFC 3339 with nanoseconds in UTC: `2026-11-23T21:04:05.123456789Z`.
    public static func timestamp(_ time: timespec) -> String {
        var seconds = time.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let nanos = String(time.tv_nsec)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2))."
            + String(repeating: "0", count: 9 - nanos.count) + nanos + "Z"
    }

    public static func realtimeNow() -> timespec {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return time
    }
}
