import Foundation
import Glibc
import NIOCore
import PodshimSystem

/// The daemon's listening Unix socket: created in a directory nobody else can write to, mode 0660
/// (root and the socket group), never stealing a live daemon's socket, and replacing a stale one
/// only while holding `<socket>.lock`, so two daemons starting at once cannot both win.
struct DaemonSocket {
    /// Why the socket cannot be served.
    let path: String
    /// The group whose members may connect (besides root); nil = root only.
    let group: gid_t?
    /// The listening socket, handed to the gRPC transport (which then owns it).
    private(set) var descriptor: Int32 = -1
    /// Held for the daemon's lifetime.
    private(set) var lockDescriptor: Int32 = -1

    init(path: String, group: gid_t?) {
        self.path = path
        self.group = group
    }

    /// Resolves `--socket-group`: a group name or a numeric gid.
    static func group(named name: String) throws(PodshimError) -> gid_t {
        if let gid = gid_t(name) { return gid }
        guard let entry = getgrnam(name) else { throw PodshimError(.invalidArgument, subject: "--socket-group", message: "no group named \"\(name)\"") }
        return entry.pointee.gr_gid
    }

    mutating func bindAndListen() throws(PodshimError) {
        guard path.hasPrefix("/") else { throw PodshimError(.invalidArgument, subject: "--socket", message: "\(path) is not an absolute path") }
        guard path.utf8.count < 108 else { throw PodshimError(.invalidArgument, subject: "--socket", message: "\(path) is longer than a Unix socket path may be (107 bytes)") }
        let directory = (path as NSString).deletingLastPathComponent
        try Self.prepareDirectory(directory)

        lockDescriptor = open(path + ".lock", O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard lockDescriptor >= 0 else { throw PodshimError(.internal, operation: "open", subject: "\(path).lock", errno: .last) }
        if flock(lockDescriptor, LOCK_EX | LOCK_NB) != 0 {
            throw PodshimError(.unavailable, message: "another podshim serve holds \(path).lock: it is serving \(path)")
        }
        try removeStaleSocket()

        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw PodshimError(.internal, operation: "socket(AF_UNIX)", errno: .last) }
        var address = unixAddress()
        // Bound with umask 0177: the file exists as 0600 until its group and mode are set.
        let previous = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        let bindErrno = Errno.last
        umask(previous)
        guard bound == 0 else { throw PodshimError(.internal, operation: "bind", subject: "\(path)", errno: bindErrno) }
        guard chown(path, getuid(), group ?? getgid()) == 0 else { throw PodshimError(.internal, operation: "chown", subject: "\(path)", errno: .last) }
        guard chmod(path, 0o660) == 0 else { throw PodshimError(.internal, operation: "chmod", subject: "\(path)", errno: .last) }
        guard listen(descriptor, 1024) == 0 else { throw PodshimError(.internal, operation: "listen", subject: "\(path)", errno: .last) }
    }

    /// The socket's directory: created 0711 when missing; refused when others may write to it
    /// (they could replace the socket) or it is a symlink.
    static func prepareDirectory(_ directory: String) throws(PodshimError) {
        var info = stat()
        if lstat(directory, &info) != 0 {
            do {
                try FileSystem.createDirectory(directory, mode: 0o711)
            } catch {
                throw PodshimError(.internal, operation: "create socket directory", subject: directory, errno: error.errno)
            }
            guard lstat(directory, &info) == 0 else { throw PodshimError(.internal, operation: "stat", subject: "\(directory)", errno: .last) }
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw PodshimError(.failedPrecondition, message: "socket directory \(directory) is not a directory (or is a symlink)")
        }
        if info.st_mode & 0o002 != 0 {
            throw PodshimError(.failedPrecondition, message: "socket directory \(directory) is world-writable: anyone could replace the socket")
        }
        if info.st_uid != getuid() {
            throw PodshimError(.failedPrecondition, message: "socket directory \(directory) is owned by uid \(info.st_uid), not by podshim's uid \(getuid())")
        }
    }

    /// A socket file nobody answers on is left over from a crashed daemon; one that answers is live.
    private func removeStaleSocket() throws(PodshimError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else {
            throw PodshimError(.failedPrecondition, message: "\(path) exists and is not a socket: refusing to replace it")
        }
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { throw PodshimError(.internal, operation: "socket(AF_UNIX)", errno: .last) }
        defer { close(probe) }
        var address = unixAddress()
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        if connected == 0 {
            throw PodshimError(.unavailable, message: "a live daemon is serving \(path): refusing to take its socket")
        }
        let error = errno
        guard error == ECONNREFUSED else {
            throw PodshimError(.internal, operation: "probe", subject: "\(path)", errno: Errno(rawValue: error))
        }
        guard unlink(path) == 0 else { throw PodshimError(.internal, operation: "remove", subject: "stale socket \(path)", errno: .last) }
    }

    /// `path` as a socket address (its length was checked in ``bindAndListen()``).
    private func unixAddress() -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in path.utf8.enumerated() { buffer[index] = byte }
        }
        return address
    }

    /// Removes the socket file (clean shutdown) and releases the lock.
    func remove() {
        unlink(path)
        if lockDescriptor >= 0 { close(lockDescriptor) }
    }
}

/// SO_PEERCRED checks of accepted connections: root, or a member of the socket group.
struct PeerPolicy: Sendable {
    let group: gid_t?

    func allows(uid: uid_t, gid: gid_t, pid: pid_t) -> Bool {
        if uid == 0 { return true }
        guard let group else { return false }
        if gid == group { return true }
        // Supplementary groups of the peer, from /proc (the peer is alive: it just connected).
        guard let status = try? FileSystem.readKernelFile("/proc/\(pid)/status"), // peer gone or unreadable: refused
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Groups:") }) else { return false }
        return line.dropFirst("Groups:".count).split(whereSeparator: { $0 == " " || $0 == "\t" })
            .contains { gid_t($0) == group }
    }

    /// The onAcceptTCPConnection hook: reads SO_PEERCRED and refuses (closes) other peers.
    func check(_ channel: any Channel, onRefusal: @escaping @Sendable (String) -> Void) -> EventLoopFuture<Void> {
        guard let provider = channel as? SocketOptionProvider else {
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(PeerRefused())
        }
        let future: EventLoopFuture<PeerCredentials> = provider.unsafeGetSocketOption(
            level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED))
        return future.flatMap { credentials in
            if allows(uid: credentials.uid, gid: credentials.gid, pid: credentials.pid) {
                return channel.eventLoop.makeSucceededFuture(())
            }
            onRefusal("refused connection from pid \(credentials.pid) uid \(credentials.uid) gid \(credentials.gid)")
            channel.close(promise: nil)
            return channel.eventLoop.makeFailedFuture(PeerRefused())
        }.flatMapErrorThrowing { error in
            channel.close(promise: nil)
            throw error
        }
    }

    struct PeerRefused: Error {}

    /// `struct ucred` (which Glibc's module hides behind _GNU_SOURCE), field for field.
    struct PeerCredentials: Sendable {
        var pid: pid_t
        var uid: uid_t
        var gid: gid_t
    }
}
