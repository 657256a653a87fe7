import Foundation
import Synchronization
import Glibc

/// Writes container lines (`server | text`) and podshim's own messages (`podshim: …`) to the
/// terminal without interleaving inside a line.
public final class TerminalPrinter: Sendable {
    /// Held across one line's writes, so lines never interleave.
    private let writing = Mutex(())
    private let width: Int

    private let sink: (@Sendable (String) -> Void)?
    /// Set when several pods share the terminal: `pod/container |` and `podshim: pod: …`.
    private let pod: String?

    /// `names`: the container names, to align the prefixes (with `pod`, every pod's
    /// `pod/container` names, so that the pods' lines align too). With a `messages` sink (the
    /// daemon), podshim's messages go there instead of stderr and container lines are not echoed
    /// (they are in the CRI log files).
    public init(names: [String], pod: String? = nil, messages: (@Sendable (String) -> Void)? = nil) {
        width = names.map(\.count).max() ?? 0
        sink = messages
        self.pod = pod
    }

    /// A line a container printed; stderr lines go to podshim's stderr.
    public func containerLine(_ container: String, _ stream: LogStream, _ text: [UInt8]) {
        if sink != nil { return }
        let name = pod.map { "\($0)/\(container)" } ?? container
        var bytes = Array((name.padding(toLength: max(width, name.count), withPad: " ", startingAt: 0) + " | ").utf8)
        bytes += text
        bytes.append(UInt8(ascii: "\n"))
        write(bytes, fd: stream == .stdout ? 1 : 2)
    }

    /// A message from podshim itself, on stderr.
    public func message(_ text: String) {
        if let sink { return sink(text) }
        write(Array(("podshim: " + (pod.map { "\($0): " } ?? "") + text + "\n").utf8), fd: 2)
    }

    private func write(_ bytes: [UInt8], fd: Int32) {
        writing.withLock { _ in
            var offset = 0
            while offset < bytes.count {
                let written = bytes[offset...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
