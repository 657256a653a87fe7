import CZlib
import CZstd
import Glibc
import PodshimSystem

/// How a layer blob is compressed, as its first bytes say (registry.md §4: media types lie, or say
/// nothing, as Docker's `diff.tar` does).
public enum LayerEncoding: String, Sendable, Equatable {
    case plain
    /// `1f 8b`; several gzip members in a row are one stream, as `gzip -d` reads them.
    case gzip
    /// `28 b5 2f fd`; several frames (and skippable frames) in a row are one stream.
    case zstd

    /// The encoding `prefix` (the blob's first bytes, at least 4 unless the blob is shorter) starts.
    static func sniff(_ prefix: UnsafeRawBufferPointer) -> LayerEncoding {
        if prefix.count >= 2 && prefix[0] == 0x1f && prefix[1] == 0x8b { return .gzip }
        if prefix.count >= 4 && prefix[0] == 0x28 && prefix[1] == 0xb5 && prefix[2] == 0x2f && prefix[3] == 0xfd {
            return .zstd
        }
        return .plain
    }
}

/// Where bytes come from: the blob, the decompressed stream. `read` fills at most `buffer.count`
/// bytes and returns how many; 0 only at the end.
public protocol LayerByteSource {
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(LayerError) -> Int
}

/// An open blob, read with read(2) from its current offset to its end. `path` is for messages.
public struct LayerFileSource: LayerByteSource {
    public var fd: Int32
    public var path: String

    public init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(LayerError) -> Int {
        do throws(SystemError) {
            return try libcCall("read", path: path) { Glibc.read(fd, buffer.baseAddress, buffer.count) }
        } catch {
            throw .system(member: nil, error)
        }
    }
}

/// Bytes in memory: tests and the fuzzer.
public struct LayerBytesSource: LayerByteSource {
    public var bytes: [UInt8]
    public private(set) var offset = 0

    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    public mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws(LayerError) -> Int {
        let count = min(buffer.count, bytes.count - offset)
        guard count > 0 else { return 0 }
        bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: count) }
        offset += count
        return count
    }
}

/// A layer blob decompressed as it is read: sniffs plain, gzip (zlib) or zstd (libzstd) from the
/// first bytes, and hashes both sides while reading: the compressed bytes give the blob's digest
/// (the descriptor's), the uncompressed ones its DiffID (the image config's `rootfs.diff_ids`).
/// Both are final only after ``finish()``, which reads what the tar reader left (the end-of-archive
/// blocks, the record padding, the rest of the source).
///
/// A class: zlib's stream state points back at its `z_stream`, which must not move.
public final class LayerDecompressor<Source: LayerByteSource>: LayerByteSource {
    /// Bytes read from the source per call.
    static var inputSize: Int { 128 << 10 }

    private var source: Source
    private let limit: UInt64?
    private let input: UnsafeMutableRawBufferPointer
    private var inputStart = 0
    private var inputEnd = 0
    private var sourceEnded = false

    /// Known after the first ``read(into:)``.
    public private(set) var encoding: LayerEncoding?
    public private(set) var compressedBytes: UInt64 = 0
    public private(set) var uncompressedBytes: UInt64 = 0
    private var compressedHash = SHA256()
    private var uncompressedHash = SHA256()  // plain: the compressed hash serves for both

    private var zlib: UnsafeMutablePointer<z_stream>?
    /// gzip: the current member ended; what follows must be another member or nothing.
    private var gzipMemberEnded = false
    private var zstd: OpaquePointer?
    /// zstd: the last ZSTD_decompressStream said a frame is not yet complete (or not flushed).
    private var zstdPending = true

    /// `limit`: the most uncompressed bytes to produce (a decompression bomb stops there with
    /// ``LayerError/limitExceeded(member:detail:)``); nil for no limit.
    public init(_ source: Source, limit: UInt64? = nil) {
        self.source = source
        self.limit = limit
        input = .allocate(byteCount: Self.inputSize, alignment: 16)
    }

    deinit {
        if let zlib {
            inflateEnd(zlib)
            zlib.deallocate()
        }
        if let zstd { ZSTD_freeDCtx(zstd) }
        input.deallocate()
    }

    /// Reads everything left, so that the digests cover the whole blob, and returns them as
    /// `sha256:<hex>`.
    public func finish() throws(LayerError) -> (digest: String, diffID: String) {
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 16)
        defer { scratch.deallocate() }
        while try read(into: scratch) > 0 {}
        let digest = "sha256:" + compressedHash.finalizeHex()
        return (digest, encoding == .plain ? digest : "sha256:" + uncompressedHash.finalizeHex())
    }

    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(LayerError) -> Int {
        guard buffer.count > 0 else { return 0 }
        if encoding == nil { try start() }
        let produced: Int
        switch encoding {
        case .gzip: produced = try readGzip(into: buffer)
        case .zstd: produced = try readZstd(into: buffer)
        default: produced = try readPlain(into: buffer)
        }
        if let limit, uncompressedBytes + UInt64(produced) > limit {
            throw .limitExceeded(member: nil, detail: "more than \(limit) bytes uncompressed")
        }
        uncompressedBytes += UInt64(produced)
        if encoding != .plain { uncompressedHash.update(UnsafeRawBufferPointer(rebasing: buffer[..<produced])) }
        return produced
    }

    // MARK: Input

    /// Reads from the source into the free end of the input buffer, hashing what came.
    private func fill() throws(LayerError) {
        if inputStart == inputEnd {
            inputStart = 0
            inputEnd = 0
        }
        guard !sourceEnded, inputEnd < input.count else { return }
        let count = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: input[inputEnd...]))
        if count == 0 {
            sourceEnded = true
            return
        }
        compressedHash.update(UnsafeRawBufferPointer(rebasing: input[inputEnd..<inputEnd + count]))
        compressedBytes += UInt64(count)
        inputEnd += count
    }

    private var available: Int { inputEnd - inputStart }

    /// Reads the magic bytes and sets up the decoder they name.
    private func start() throws(LayerError) {
        while available < 4 && !sourceEnded { try fill() }
        let sniffed = LayerEncoding.sniff(UnsafeRawBufferPointer(rebasing: input[inputStart..<inputEnd]))
        switch sniffed {
        case .gzip:
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            // 15 + 16: a 32 KiB window, gzip framing only.
            let status = inflateInit2_(stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            guard status == Z_OK else {
                stream.deallocate()
                throw .corruptStream(encoding: .gzip, detail: "inflateInit2: \(status)")
            }
            zlib = stream
        case .zstd:
            guard let context = ZSTD_createDCtx() else {
                throw .system(member: nil, SystemError("ZSTD_createDCtx", errno: .noMemory))
            }
            zstd = context
        case .plain:
            break
        }
        encoding = sniffed
    }

    // MARK: Decoders

    private func readPlain(into buffer: UnsafeMutableRawBufferPointer) throws(LayerError) -> Int {
        if available == 0 { try fill() }
        let count = min(available, buffer.count)
        guard count > 0 else { return 0 }
        buffer.baseAddress!.copyMemory(from: input.baseAddress! + inputStart, byteCount: count)
        inputStart += count
        return count
    }

    private func readGzip(into buffer: UnsafeMutableRawBufferPointer) throws(LayerError) -> Int {
        let stream = zlib!
        while true {
            if gzipMemberEnded {
                // Another member, or the end. Anything else is not a gzip stream.
                while available < 2 && !sourceEnded { try fill() }
                if available == 0 { return 0 }
                guard available >= 2, input[inputStart] == 0x1f, input[inputStart + 1] == 0x8b else {
                    throw .corruptStream(encoding: .gzip, detail: "data that is not a gzip member follows the end of the "
                                         + "stream, at byte \(compressedBytes - UInt64(available))")
                }
                inflateReset(stream)
                gzipMemberEnded = false
            }
            if available == 0 { try fill() }
            let before = available
            stream.pointee.next_in = input.baseAddress!.advanced(by: inputStart).assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_in = uInt(available)
            stream.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(buffer.count)
            let status = inflate(stream, Z_NO_FLUSH)
            inputStart = inputEnd - Int(stream.pointee.avail_in)
            let produced = buffer.count - Int(stream.pointee.avail_out)
            switch status {
            case Z_STREAM_END:
                gzipMemberEnded = true
            case Z_OK, Z_BUF_ERROR:
                if produced == 0 && available == 0 && sourceEnded {
                    throw .corruptStream(encoding: .gzip, detail: "the stream ends early, after \(compressedBytes) bytes")
                }
                if produced == 0 && available == before && before > 0 {  // zlib made no progress: never loop
                    throw .corruptStream(encoding: .gzip, detail: "inflate made no progress (status \(status))")
                }
            default:
                let message = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw .corruptStream(encoding: .gzip, detail: message)
            }
            if produced > 0 { return produced }
        }
    }

    private func readZstd(into buffer: UnsafeMutableRawBufferPointer) throws(LayerError) -> Int {
        let context = zstd!
        while true {
            if available == 0 { try fill() }
            if available == 0 && sourceEnded && !zstdPending { return 0 }
            let before = available
            var inBuffer = ZSTD_inBuffer(src: input.baseAddress! + inputStart, size: available, pos: 0)
            var outBuffer = ZSTD_outBuffer(dst: buffer.baseAddress!, size: buffer.count, pos: 0)
            let result = ZSTD_decompressStream(context, &outBuffer, &inBuffer)
            if ZSTD_isError(result) != 0 {
                throw .corruptStream(encoding: .zstd, detail: String(cString: ZSTD_getErrorName(result)))
            }
            inputStart += inBuffer.pos
            zstdPending = result != 0
            if outBuffer.pos > 0 { return outBuffer.pos }
            if available == 0 && sourceEnded {
                if zstdPending {
                    throw .corruptStream(encoding: .zstd, detail: "the stream ends early, after \(compressedBytes) bytes")
                }
                return 0
            }
            if inBuffer.pos == 0 && before > 0 {  // libzstd made no progress: never loop
                throw .corruptStream(encoding: .zstd, detail: "ZSTD_decompressStream made no progress")
            }
        }
    }
}
