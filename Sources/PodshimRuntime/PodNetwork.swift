import Synchronization
import Foundation
import Glibc
import PodshimSystem

/// Connections made from inside a pod's network namespace (preStop httpGet, later probes): a
/// short-lived thread joins the namespace through the pause process's pidfd (setns affects only
/// the calling thread), creates the socket there — a socket stays in the namespace it was
/// created in — and ends, so podshim's own threads never change namespace.
public enum PodNetwork {
    /// `GET path` on `host:port` in the network namespace of `sandbox`; the HTTP status code.
    public static func httpGet(
        sandbox: ProcessHandle, host: String = "127.0.0.1", port: Int, path: String,
        headers: [(name: String, value: String)] = [], timeoutSeconds: Double
    ) -> Result<Int, PodshimError> {
        let deadline = MonotonicInstant.now().advanced(bySeconds: timeoutSeconds)
        let fd: Int32
        switch connect(sandbox: sandbox, host: host, port: port, deadline: deadline) {
        case .failure(let failure): return .failure(failure)
        case .success(let socket): fd = socket
        }
        defer { close(fd) }
        var request = "GET \(path) HTTP/1.1\r\nHost: \(host):\(port)\r\nUser-Agent: podshim\r\nConnection: close\r\n"
        for header in headers { request += "\(header.name): \(header.value)\r\n" }
        request += "\r\n"
        let bytes = Array(request.utf8)
        var sent = 0
        while sent < bytes.count {
            guard wait(fd, for: Int16(POLLOUT), until: deadline) else { return .failure(PodshimError(.deadlineExceeded, operation: "send", subject: "\(host):\(port)", message: "timed out")) }
            let count = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if count < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return .failure(PodshimError(.unavailable, operation: "send", subject: "\(host):\(port)", errno: .last))
            }
            sent += count
        }
        var response: [UInt8] = []
        while !response.contains(UInt8(ascii: "\n")) && response.count < 4096 {
            guard wait(fd, for: Int16(POLLIN), until: deadline) else { return .failure(PodshimError(.deadlineExceeded, operation: "recv", subject: "\(host):\(port)", message: "timed out waiting for a response")) }
            var buffer = [UInt8](repeating: 0, count: 1024)
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                return .failure(PodshimError(.unavailable, operation: "recv", subject: "\(host):\(port)", errno: .last))
            }
            if count == 0 { break }
            response += buffer[0..<count]
        }
        // "HTTP/1.1 200 OK"
        let line = String(decoding: response.prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        let parts = line.split(separator: " ")
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
            return .failure(PodshimError(.unavailable, operation: "GET", subject: "\(host):\(port)\(path)", message: "not an HTTP response: \"\(line.prefix(80))\""))
        }
        return .success(status)
    }

    /// A non-blocking TCP connection to `host:port` (an IPv4 or IPv6 literal) in the sandbox's
    /// network namespace.
    public static func connect(sandbox: ProcessHandle, host: String, port: Int, deadline: MonotonicInstant) -> Result<Int32, PodshimError> {
        var storage = sockaddr_storage()
        var length: socklen_t = 0
        var family: Int32 = AF_INET
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = in_port_t(UInt16(port).bigEndian)
            withUnsafeBytes(of: &v4) { source in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) } }
            length = socklen_t(MemoryLayout<sockaddr_in>.size)
        } else if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = in_port_t(UInt16(port).bigEndian)
            withUnsafeBytes(of: &v6) { source in withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: source) } }
            length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        } else {
            return .failure(PodshimError(.invalidArgument, subject: "host", message: "\"\(host)\" is not an IP address (names are not resolved)"))
        }
        let created = socketInNamespace(of: sandbox, family: family)
        guard case .success(let fd) = created else { return created }
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
        }
        if result != 0 && errno != EINPROGRESS {
            let error = Errno.last
            close(fd)
            return .failure(PodshimError(.unavailable, operation: "connect", subject: "\(host):\(port)", errno: error))
        }
        guard wait(fd, for: Int16(POLLOUT), until: deadline) else {
            close(fd)
            return .failure(PodshimError(.deadlineExceeded, operation: "connect", subject: "\(host):\(port)", message: "timed out"))
        }
        var error: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size)
        if error != 0 {
            close(fd)
            return .failure(PodshimError(.unavailable, operation: "connect", subject: "\(host):\(port)", errno: Errno(rawValue: error)))
        }
        return .success(fd)
    }

    /// A non-blocking, close-on-exec TCP socket created by a thread inside the namespace.
    static func socketInNamespace(of sandbox: ProcessHandle, family: Int32) -> Result<Int32, PodshimError> {
        final class Box: Sendable { let result = Mutex<Result<Int32, PodshimError>>(.failure(PodshimError(.internal, message: "no result"))) }
        let box = Box()
        let done = DispatchSemaphore(value: 0)
        let pidfd = sandbox.pidfd
        let thread = Thread {
            defer { done.signal() }
            do {
                try Kernel.joinNetworkNamespace(of: pidfd)
            } catch {
                box.result.withLock { $0 = .failure(PodshimError.from(error)) }
                return
            }
            let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            let result: Result<Int32, PodshimError> = fd >= 0 ? .success(fd) : .failure(PodshimError(.internal, operation: "socket", errno: .last))
            box.result.withLock { $0 = result }
        }
        thread.stackSize = 128 << 10
        thread.start()
        done.wait()
        return box.result.withLock { $0 }
    }

    private static func wait(_ fd: Int32, for events: Int16, until deadline: MonotonicInstant) -> Bool {
        while true {
            let remaining = deadline.milliseconds(since: MonotonicInstant.now())
            if remaining <= 0 { return false }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let ready = poll(&entry, 1, Int32(min(remaining.rounded(.up), 60_000)))
            if ready > 0 { return true }
            if ready < 0 && errno != EINTR { return false }
        }
    }
}
