/// Reading CRI-format container logs: lines of `<timestamp> <stream> <tags> <text>`, where
/// stream is `stdout` or `stderr` and the first tag is `P` for a partial line (continued by the
/// next line of the same stream) or `F` for the end of one. Pure: bytes in, entries out.
enum CtlLogStream: Equatable {
    case stdout
    case stderr
}

/// One line of the container's output, with the partial pieces already joined.
struct CtlLogEntry: Equatable {
    var stream: CtlLogStream
    var text: [UInt8]
}

/// Turns chunks of a CRI log file into whole output lines. Feed it what is read, in order.
struct CtlCRILogReader {
    /// Bytes after the last newline, waiting for the rest of their line.
    private var unfinishedLine: [UInt8] = []
    /// Partial (`P`) pieces per stream, waiting for their `F` line.
    private var pending: [CtlLogStream: [UInt8]] = [:]

    /// The entries the complete lines in `bytes` finish.
    mutating func feed(_ bytes: some Sequence<UInt8>) -> [CtlLogEntry] {
        var entries: [CtlLogEntry] = []
        for byte in bytes {
            if byte == UInt8(ascii: "\n") {
                if let entry = take(unfinishedLine[...]) { entries.append(entry) }
                unfinishedLine.removeAll(keepingCapacity: true)
            } else {
                unfinishedLine.append(byte)
            }
        }
        return entries
    }

    /// At the end of the file for good: a last line without its newline, then any partial
    /// pieces whose final line never came.
    mutating func finish() -> [CtlLogEntry] {
        var entries: [CtlLogEntry] = []
        if !unfinishedLine.isEmpty, let entry = take(unfinishedLine[...]) { entries.append(entry) }
        unfinishedLine.removeAll()
        for stream in [CtlLogStream.stdout, .stderr] {
            if let text = pending.removeValue(forKey: stream) { entries.append(CtlLogEntry(stream: stream, text: text)) }
        }
        return entries
    }

    private mutating func take(_ line: ArraySlice<UInt8>) -> CtlLogEntry? {
        guard let parsed = Self.parse(line) else {
            // Not CRI format: show it as it is rather than lose it.
            return line.isEmpty ? nil : CtlLogEntry(stream: .stdout, text: Array(line))
        }
        if parsed.partial {
            pending[parsed.stream, default: []].append(contentsOf: parsed.text)
            return nil
        }
        let text = (pending.removeValue(forKey: parsed.stream) ?? []) + parsed.text
        return CtlLogEntry(stream: parsed.stream, text: text)
    }

    /// Splits one line (without its newline); nil when it is not in CRI format.
    static func parse(_ line: ArraySlice<UInt8>) -> (stream: CtlLogStream, partial: Bool, text: ArraySlice<UInt8>)? {
        let space = UInt8(ascii: " ")
        guard let afterTimestamp = line.firstIndex(of: space), afterTimestamp > line.startIndex else { return nil }
        let streamStart = afterTimestamp + 1
        guard let afterStream = line[streamStart...].firstIndex(of: space) else { return nil }
        let stream: CtlLogStream
        switch String(decoding: line[streamStart..<afterStream], as: UTF8.self) {
        case "stdout": stream = .stdout
        case "stderr": stream = .stderr
        default: return nil
        }
        let tagsStart = afterStream + 1
        let afterTags = line[tagsStart...].firstIndex(of: space) ?? line.endIndex
        let tags = line[tagsStart..<afterTags]
        let firstTag = tags.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false).first ?? []
        let partial: Bool
        switch String(decoding: firstTag, as: UTF8.self) {
        case "P": partial = true
        case "F": partial = false
        default: return nil
        }
        let textStart = afterTags < line.endIndex ? afterTags + 1 : line.endIndex
        return (stream, partial, line[textStart...])
    }

    /// The last `count` entries; all of them when `count` is negative.
    static func tail(_ entries: [CtlLogEntry], _ count: Int) -> [CtlLogEntry] {
        count < 0 ? entries : Array(entries.suffix(count))
    }
}
