import Crypto
import Glibc
import PodshimSystem

/// SHA-256, streaming: feed bytes with ``update(_:)``, then ``finalize()``. The hashing is
/// swift-crypto's (BoringSSL's assembly where the CPU has it); this adds the hex forms image ids
/// and OCI blob digests are written in, and hashing a file through its descriptor.
public struct SHA256 {
    /// Bytes read per `read(2)` when hashing a file.
    static let chunkSize = 1 << 20

    private var hasher = Crypto.SHA256()

    public init() {}

    public mutating func update(_ bytes: UnsafeRawBufferPointer) {
        hasher.update(bufferPointer: bytes)
    }

    mutating func update(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { update($0) }
    }

    mutating func update(_ string: String) {
        update(Array(string.utf8))
    }

    /// The 32-byte digest.
    func finalize() -> [UInt8] {
        Array(hasher.finalize())
    }

    /// The digest in lowercase hex.
    public func finalizeHex() -> String {
        Self.hex(finalize())
    }

    // MARK: Conveniences

    /// `sha256:<hex>` of `bytes`: a blob's digest as OCI descriptors write it.
    public static func digest(of bytes: [UInt8]) -> String {
        "sha256:" + hexDigest(of: bytes)
    }

    /// Lowercase hex of `bytes`.
    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The hex digest of the UTF-8 bytes of `string`.
    static func hexDigest(of string: String) -> String {
        var hasher = SHA256()
        hasher.update(string)
        return hasher.finalizeHex()
    }

    /// The hex digest of `bytes`.
    static func hexDigest(of bytes: [UInt8]) -> String {
        var hasher = SHA256()
        hasher.update(bytes)
        return hasher.finalizeHex()
    }

    /// Hashes everything from the current offset of `fd` to its end, in 1 MiB reads.
    /// Returns the hex digest and the number of bytes read.
    static func hexDigest(fileDescriptor fd: Int32, path: String) throws(SystemError) -> (hex: String, size: UInt64) {
        var hasher = SHA256()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkSize, alignment: 16)
        defer { buffer.deallocate() }
        var size: UInt64 = 0
        while true {
            let count = read(fd, buffer.baseAddress, chunkSize)
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError("read", path: path, errno: .last)
            }
            if count == 0 { break }
            size += UInt64(count)
            hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        }
        return (hasher.finalizeHex(), size)
    }

    /// The hex digest and size of the file at `path`.
    static func hexDigest(ofFile path: String) throws(SystemError) -> (hex: String, size: UInt64) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError("open", path: path, errno: .last) }
        defer { close(fd) }
        return try hexDigest(fileDescriptor: fd, path: path)
    }
}
