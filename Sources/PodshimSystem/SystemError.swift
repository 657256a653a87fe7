@_exported import SystemPackage
import Glibc

/// A failed system call, with what was being done and to what: `mount /run/podshim/…: EPERM`.
public struct SystemError: Error, Equatable, CustomStringConvertible, Sendable {
    /// What was attempted, e.g. `mount tmpfs`, `setns(net)`, `write cpu.max`.
    public var operation: String
    /// The file, directory or object acted on, when there is one.
    public var path: String?
    /// Why it failed.
    public var errno: Errno

    public init(_ operation: String, path: String? = nil, errno: Errno) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    /// Builds an error from a `-errno` return value of a CShims function.
    public init(_ operation: String, path: String? = nil, negatedErrno: Int32) {
        self.init(operation, path: path, errno: Errno(rawValue: -negatedErrno))
    }

    public var description: String {
        if let path { return "\(operation) \(path): \(errno.symbolicName)" }
        return "\(operation): \(errno.symbolicName)"
    }
}

extension Errno {
    /// The C name of the error (`ENOENT`), as crun and runc print it; `errno 135` when unknown.
    public var symbolicName: String {
        Errno.names[rawValue] ?? "errno \(rawValue)"
    }

    private static let names: [Int32: String] = [
        1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG",
        8: "ENOEXEC", 9: "EBADF", 10: "ECHILD", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES",
        14: "EFAULT", 15: "ENOTBLK", 16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 19: "ENODEV",
        20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL", 23: "ENFILE", 24: "EMFILE", 25: "ENOTTY",
        26: "ETXTBSY", 27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE", 30: "EROFS", 31: "EMLINK",
        32: "EPIPE", 34: "ERANGE", 36: "ENAMETOOLONG", 38: "ENOSYS", 39: "ENOTEMPTY",
        40: "ELOOP", 61: "ENODATA", 75: "EOVERFLOW", 95: "EOPNOTSUPP", 98: "EADDRINUSE",
        99: "EADDRNOTAVAIL", 110: "ETIMEDOUT", 111: "ECONNREFUSED", 116: "ESTALE",
        122: "EDQUOT",
    ]
}

/// Runs a CShims call that returns `-errno` on failure; retries EINTR.
/// Returns the non-negative result.
@discardableResult
public func systemCall(
    _ operation: @autoclosure () -> String, path: @autoclosure () -> String? = nil,
    _ body: () -> Int32
) throws(SystemError) -> Int32 {
    while true {
        let result = body()
        if result >= 0 { return result }
        if result == -Errno.interrupted.rawValue { continue }
        throw SystemError(operation(), path: path(), negatedErrno: result)
    }
}

/// Runs a libc call that returns -1 and sets errno; retries EINTR.
@discardableResult
public func libcCall<T: BinaryInteger>(
    _ operation: @autoclosure () -> String, path: @autoclosure () -> String? = nil,
    _ body: () -> T
) throws(SystemError) -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let errno = Errno.last
        if errno == .interrupted { continue }
        throw SystemError(operation(), path: path(), errno: errno)
    }
}

extension Errno {
    /// The calling thread's errno, read right after the failed call.
    public static var last: Errno { Errno(rawValue: Glibc.errno) }
}
