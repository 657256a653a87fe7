import Foundation
import Glibc
import PodshimSystem

/// A pod's network namespace kept alive by a bind mount of its nsfs file (as containerd and
/// CRI-O's pinns do): plugins get a path (CNI_NETNS) that stays valid whether or not a process is
/// in the namespace, so DEL can clean up inside it after the pod's processes are gone.
public enum NetnsPin {

    /// Pins the network namespace of `pid` at `path` (an empty file is created for the mount).
    public static func pin(pid: pid_t, at path: String) throws(SystemError) {
        let fd = try libcCall("open", path: path) { open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o444) }
        close(fd)
        let source = "/proc/\(pid)/ns/net"
        do {
            try libcCall("mount", path: path) { mount(source, path, nil, UInt(MS_BIND), nil) }
        } catch {
            unlink(path)
            throw error
        }
    }

    /// Whether `path` holds a pinned namespace (a file that is still there but no longer a mount
    /// makes plugins fail with "unknown FS magic").
    /// Namespace files all live on nsfs, one device: a path on that device is a namespace.
    public static func isPinned(_ path: String) -> Bool {
        var pinned = stat()
        var own = stat()
        return stat(path, &pinned) == 0 && stat("/proc/self/ns/net", &own) == 0 && pinned.st_dev == own.st_dev
    }

    /// Releases the pin (unmount, detached, then unlink). Nothing there is fine.
    public static func unpin(_ path: String) throws(SystemError) {
        if isPinned(path) {
            do {
                try libcCall("umount2", path: path) { umount2(path, Int32(MNT_DETACH)) }
            } catch where error.errno == .invalidArgument {
                // Not a mount point after all (a stale file): unlinked below.
            }
        }
        if unlink(path) != 0 && errno != ENOENT { throw SystemError("unlink", path: path, errno: .last) }
    }
}
