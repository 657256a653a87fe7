#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading a manifest file with plain POSIX calls, so a failure carries the system's own
/// reason (`No such file or directory`, `Is a directory`, `Permission denied`).
enum ManifestFile {
    /// The bytes of the file at `path`.
    ///
    /// - Throws: ``ManifestError`` at the path `manifest`: `cannot read <path>: <reason>`.
    static func contents(of path: String) throws(ManifestError) -> [UInt8] {
        func failure(_ errorNumber: Int32) -> ManifestError {
            ManifestError(path: "manifest", message: "cannot read \(path): \(String(cString: strerror(errorNumber)))")
        }

        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure(errno) }
        defer { close(fd) }

        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure(errno)
            }
            if count == 0 { return contents }
            contents.append(contentsOf: buffer[..<count])
        }
    }
}
