import CShims
import Glibc

/// The system calls PodshimImages' in-process layer unpacker needs that Swift's Glibc module does
/// not offer: openat2 with any RESOLVE_* flags, O_PATH, and extended attributes on a descriptor.
/// Each returns what the kernel returned, or `-errno`: the caller names the member it failed on.
public enum LayerSyscalls {
    /// openat2's `resolve` flags (linux/openat2.h, kernel ABI; the header does not import).
    public struct Resolve: OptionSet, Sendable {
        public let rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }

        /// No crossing of mount points.
        public static let noXDev = Resolve(rawValue: 0x01)
        /// No `/proc/self/fd/N`-style magic links.
        public static let noMagicLinks = Resolve(rawValue: 0x02)
        /// No symbolic link anywhere in the path (ELOOP).
        public static let noSymlinks = Resolve(rawValue: 0x04)
        /// The path may not leave the directory (absolute paths, `..` above it: EXDEV).
        public static let beneath = Resolve(rawValue: 0x08)
        /// The directory is `/` for the path: `..` and absolute symlinks stay inside it.
        public static let inRoot = Resolve(rawValue: 0x10)
    }

    /// O_PATH (hidden behind _GNU_SOURCE in Glibc).
    public static var openPath: Int32 { psh_o_path }

    /// openat2(2): `path` relative to `dirFD`, resolved as `resolve` says. Returns the fd or -errno
    /// (EINTR and EAGAIN are retried).
    public static func openat2(_ dirFD: Int32, _ path: UnsafePointer<CChar>, flags: Int32, mode: mode_t = 0,
                               resolve: Resolve) -> Int32 {
        psh_openat2(dirFD, path, UInt64(UInt32(bitPattern: flags)), UInt64(mode), resolve.rawValue)
    }

    /// syncfs(2): the whole file system holding `fd` written back. Returns 0 or -errno.
    public static func syncFileSystem(_ fd: Int32) -> Int32 { psh_syncfs(fd) }

    /// fsetxattr(2) (create or replace). Returns 0 or -errno.
    public static func setXattr(_ fd: Int32, name: String, value: UnsafeRawBufferPointer) -> Int32 {
        psh_fsetxattr(fd, name, value.baseAddress, value.count)
    }

    /// The value of attribute `name` of the file open at `fd`, or -errno (-ENODATA: absent).
    public static func getXattr(_ fd: Int32, name: String) -> Result<[UInt8], Errno> {
        while true {
            let length = psh_fgetxattr(fd, name, nil, 0)
            if length < 0 { return .failure(Errno(rawValue: Int32(-length))) }
            var value = [UInt8](repeating: 0, count: Int(length))
            let read = value.withUnsafeMutableBytes { psh_fgetxattr(fd, name, $0.baseAddress, $0.count) }
            if read == -Int(ERANGE) { continue }  // it grew in between
            if read < 0 { return .failure(Errno(rawValue: Int32(-read))) }
            return .success(Array(value.prefix(Int(read))))
        }
    }

    /// `makedev(3)` (a macro Swift cannot call): glibc's encoding of a device number.
    public static func makeDevice(major: UInt32, minor: UInt32) -> dev_t {
        let major = UInt64(major), minor = UInt64(minor)
        return dev_t((minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | ((major & ~0xfff) << 32))
    }

    /// `major(3)` and `minor(3)` of a device number.
    public static func deviceNumbers(_ device: dev_t) -> (major: UInt32, minor: UInt32) {
        let device = UInt64(device)
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff)
        let minor = (device & 0xff) | ((device >> 12) & ~0xff)
        return (UInt32(truncatingIfNeeded: major), UInt32(truncatingIfNeeded: minor))
    }
}
