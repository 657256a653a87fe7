import Foundation
import Glibc
import Logging
import PodshimSystem

/// The sd_notify protocol without libsystemd: one datagram of `KEY=value` lines to the
/// AF_UNIX socket named by `$NOTIFY_SOCKET` (a leading `@` names the abstract namespace).
///
/// With `Type=notify` systemd counts the unit started only on `READY=1`, so a kubelet ordered
/// after podshim.service finds the socket listening.
public enum SystemdNotify {

    /// `READY=1`, a status line for `systemctl status`, and the daemon's PID.
    public static func readyMessage(status: String, pid: pid_t = getpid()) -> String {
        "READY=1\nSTATUS=\(status.replacingOccurrences(of: "\n", with: " "))\nMAINPID=\(pid)"
    }

    /// `STOPPING=1`, with a status line.
    public static func stoppingMessage(status: String) -> String {
        "STOPPING=1\nSTATUS=\(status.replacingOccurrences(of: "\n", with: " "))"
    }

    /// Sends `message` to `$NOTIFY_SOCKET` in `environment`. Returns false, sending nothing,
    /// when the variable is unset or empty (not started by systemd, or not `Type=notify`).
    @discardableResult
    public static func notify(
        _ message: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(PodshimError) -> Bool {
        guard let path = environment["NOTIFY_SOCKET"], !path.isEmpty else { return false }
        try send(message, to: path)
        return true
    }

    /// Like `notify(_:environment:)`, logging a failure as a warning instead of throwing: a daemon
    /// that cannot tell systemd it is ready still serves (systemd's start timeout then decides).
    public static func notify(_ message: String, logger: Logger) {
        do {
            try notify(message)
        } catch {
            logger.warning("sd_notify: \(error)")
        }
    }

    /// Sends `message` as one datagram to the AF_UNIX socket `path`: a filesystem path, or
    /// `@name` for the abstract name `\0name`.
    public static func send(_ message: String, to path: String) throws(PodshimError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var pathBytes = Array(path.utf8)
        let abstract = pathBytes.first == UInt8(ascii: "@")
        guard abstract || pathBytes.first == UInt8(ascii: "/") else {
            throw PodshimError(.invalidArgument, subject: "NOTIFY_SOCKET", message: "\(path) is neither an absolute path nor an abstract socket name (@name)")
        }
        if abstract { pathBytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        // A path needs room for its terminating NUL; an abstract name is counted exactly.
        guard pathBytes.count + (abstract ? 0 : 1) <= capacity, pathBytes.count > 1 else {
            throw PodshimError(.invalidArgument, subject: "NOTIFY_SOCKET", message: "\(path) is not a usable socket address (at most \(capacity - 1) bytes)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + pathBytes.count + (abstract ? 0 : 1))

        let fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw PodshimError(.internal, operation: "socket(AF_UNIX)", errno: .last) }
        defer { close(fd) }
        let bytes = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { socketAddress in
                bytes.withUnsafeBytes { buffer in
                    sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), socketAddress, length)
                }
            }
        }
        guard sent == bytes.count else {
            if sent < 0 { throw PodshimError(.unavailable, operation: "sendto", subject: path, errno: .last) }
            throw PodshimError(.unavailable, operation: "sendto", subject: path, message: "short write (\(sent) of \(bytes.count) bytes)")
        }
    }
}
