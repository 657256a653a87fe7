import CShims
import Glibc
import Synchronization

/// podshim's end of a pause process's fd keeper (`CShims/pause/pause.c`).
///
/// What must outlive the daemon is held by the pod's pause process, which outlives it anyway: a
/// container's pidfd (the kernel keeps the exit status of a process for as long as a pidfd to it
/// is open, Linux 6.15's PIDFD_INFO_EXIT, even after someone else reaped it) and the read ends of
/// its output pipes (so a container that exits while podshim is down does not take its last lines
/// with the pipe). The pause process watches the pidfds and notes when each process exited.
///
/// The pause process has one SOCK_SEQPACKET socketpair on fds 0 and 1: it reads requests on fd 0,
/// and fd 1 — podshim's end — stays open in it so that a restarted podshim can take it back
/// (``reclaim(from:)``, pidfd_getfd) and ask again. Calls are serialized; each carries an id, and
/// replies left over from an earlier podshim are skipped.
public final class FDKeeper: Sendable {
    private let socket: Int32
    /// The next request id; held for the whole call, so that one reply answers one request.
    private let nextID: Mutex<UInt64>
    /// How long to wait for the pause process to answer.
    private static let timeoutMilliseconds: Int32 = 2000

    /// Takes ownership of `socket`, podshim's end of the pair.
    public init(owning socket: Int32) {
        self.socket = socket
        nextID = Mutex(UInt64.random(in: 1...(UInt64.max >> 1)))
    }

    deinit { close(socket) }

    /// A close-on-exec SOCK_SEQPACKET pair for a new pause process: give it both ends as its fds 0
    /// and 1, then keep `.podshim` as an ``FDKeeper`` and close `.pause`.
    public static func makePair() throws(SystemError) -> (pause: Int32, podshim: Int32) {
        var fds: [Int32] = [-1, -1]
        try systemCall("socketpair(AF_UNIX, SOCK_SEQPACKET)") { psh_seqpacket_pair(&fds) }
        return (fds[0], fds[1])
    }

    /// podshim's end, taken back from a running pause process (after a restart of podshim). Nil
    /// when that process has no keeper (its fd 1 is not a SOCK_SEQPACKET socket: an older pause).
    public static func reclaim(from pause: ProcessHandle) -> FDKeeper? {
        let fd = psh_pidfd_getfd(pause.pidfd, 1)
        guard fd >= 0 else { return nil }
        var type: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == Int32(SOCK_SEQPACKET.rawValue) else {
            close(fd)
            return nil
        }
        return FDKeeper(owning: fd)
    }

    private func call(_ operation: Int32, argument: Int32 = -1, fds: [Int32] = [], watchMask: UInt32 = 0) throws(SystemError) -> psh_keeper_reply {
        try nextID.withLock { (id: inout UInt64) throws(SystemError) -> psh_keeper_reply in
            id &+= 1
            var reply = psh_keeper_reply()
            let result = fds.withUnsafeBufferPointer { buffer in
                psh_keeper_call(socket, id, operation, argument, buffer.baseAddress, Int32(buffer.count),
                                watchMask, Self.timeoutMilliseconds, &reply)
            }
            if result < 0 { throw SystemError("fd keeper request \(operation)", path: "pause", negatedErrno: result) }
            if reply.result < 0 { throw SystemError("fd keeper request \(operation)", path: "pause", negatedErrno: reply.result) }
            return reply
        }
    }

    /// Has the pause process hold copies of `fds` (at most 8); bit i of `watchMask` marks fds[i] as a
    /// pidfd whose exit time it notes. Returns the fd numbers in the pause process, in order.
    public func hold(_ fds: [Int32], watchMask: UInt32 = 0) throws(SystemError) -> [Int32] {
        let reply = try call(Int32(PSH_KEEPER_HOLD), fds: fds, watchMask: watchMask)
        let numbers = withUnsafeBytes(of: reply.fds) { Array($0.bindMemory(to: Int32.self).prefix(Int(reply.count))) }
        guard numbers.count == fds.count else {
            throw SystemError("fd keeper hold", path: "pause", errno: .protocolError)
        }
        return numbers
    }

    /// Closes fd `number` in the pause process.
    public func release(_ number: Int32) throws(SystemError) {
        _ = try call(Int32(PSH_KEEPER_RELEASE), argument: number)
    }

    /// When the process of the held pidfd `number` exited (ns since the epoch), as the pause process
    /// saw it; nil while it runs.
    public func exitTime(of number: Int32) throws(SystemError) -> Int64? {
        let reply = try call(Int32(PSH_KEEPER_QUERY), argument: number)
        return reply.exited_at > 0 ? reply.exited_at : nil
    }

    /// A copy of fd `number` of `pause` (pidfd_getfd), owned by the caller.
    public static func take(_ number: Int32, from pause: ProcessHandle) throws(SystemError) -> Int32 {
        try systemCall("pidfd_getfd", path: "fd \(number) of pid \(pause.pid)") { psh_pidfd_getfd(pause.pidfd, number) }
    }
}
