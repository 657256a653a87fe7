import CZlib

/// SPDY/3 header block compression: one zlib stream per direction for the life of the
/// connection, primed with the SPDY/3 dictionary, flushed with Z_SYNC_FLUSH after every block and
/// never reset (each block refers to what the earlier ones sent).
///
/// Not thread-safe: a connection's reader owns its ``Decompressor``, its writer its ``Compressor``.
public enum SPDYHeaderCodec {
    /// The SPDY/3 header compression dictionary (SPDY Protocol Draft 3, 2.6.10.1): the words below,
    /// each with a 4-byte big-endian length, then the tail as it is. 1,423 bytes.
    public static let dictionary: [UInt8] = {
        let words = [
            "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
            "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
            "content-base", "content-encoding", "content-language", "content-length", "content-location",
            "content-md5", "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host",
            "if-match", "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified",
            "location", "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer",
            "retry-after", "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via",
            "warning", "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url",
            "public", "set-cookie", "keep-alive", "origin",
        ]
        let tail = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
            + "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
            + "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
            + "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
            + "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
            + "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
        var bytes: [UInt8] = []
        for word in words {
            bytes += bigEndian(UInt32(word.utf8.count)) + Array(word.utf8)
        }
        return bytes + Array(tail.utf8)
    }()

    /// Largest decompressed header block accepted (a compression bomb stops here).
    public static let maximumBlockSize = 256 << 10
    /// Most pairs in one block.
    public static let maximumPairs = 256

    /// Names SPDY/3 forbids in a block (HTTP/1.1 hop-by-hop headers).
    static let forbiddenNames: Set<String> = ["connection", "host", "keep-alive", "proxy-connection", "transfer-encoding"]

    static func bigEndian(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
    }

    /// The writing side's zlib stream.
    public final class Compressor {
        private var stream = z_stream()

        public init() {
            let status = deflateInit_(&stream, Z_DEFAULT_COMPRESSION, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            precondition(status == Z_OK, "deflateInit: \(status)") // only fails without memory or for a bad zlib
            let dictionary = SPDYHeaderCodec.dictionary
            _ = dictionary.withUnsafeBufferPointer { deflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
        }

        deinit { deflateEnd(&stream) }

        /// The compressed block for `headers` (names lower-cased).
        public func compress(_ headers: SPDYHeaders) -> [UInt8] {
            var plain = bigEndian(UInt32(headers.pairs.count))
            for pair in headers.pairs {
                let name = Array(pair.name.lowercased().utf8)
                let value = Array(pair.value.utf8)
                plain += bigEndian(UInt32(name.count)) + name + bigEndian(UInt32(value.count)) + value
            }
            return compressRaw(plain)
        }

        /// `plain` (an encoded block) compressed and flushed.
        func compressRaw(_ plain: [UInt8]) -> [UInt8] {
            var plain = plain
            var output: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: plain.count + 64)
            plain.withUnsafeMutableBufferPointer { input in
                stream.next_in = input.baseAddress
                stream.avail_in = uInt(input.count)
                repeat {
                    chunk.withUnsafeMutableBufferPointer { out in
                        stream.next_out = out.baseAddress
                        stream.avail_out = uInt(out.count)
                        _ = deflate(&stream, Z_SYNC_FLUSH)
                        output += out[0..<(out.count - Int(stream.avail_out))]
                    }
                } while stream.avail_out == 0
                stream.next_in = nil
            }
            return output
        }
    }

    /// The reading side's zlib stream.
    public final class Decompressor {
        private var stream = z_stream()

        public init() {
            let status = inflateInit_(&stream, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
            precondition(status == Z_OK, "inflateInit: \(status)") // only fails without memory or for a bad zlib
        }

        deinit { inflateEnd(&stream) }

        /// The headers of one compressed block.
        public func decompress(_ block: ArraySlice<UInt8>, stream streamID: UInt32) throws(SPDYProtocolError) -> SPDYHeaders {
            var input = Array(block)
            var plain: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            var failure: String?
            input.withUnsafeMutableBufferPointer { bytes in
                stream.next_in = bytes.baseAddress
                stream.avail_in = uInt(bytes.count)
                while failure == nil {
                    var status: Int32 = Z_OK
                    chunk.withUnsafeMutableBufferPointer { out in
                        stream.next_out = out.baseAddress
                        stream.avail_out = uInt(out.count)
                        status = inflate(&stream, Z_SYNC_FLUSH)
                        if status == Z_NEED_DICT {
                            let dictionary = SPDYHeaderCodec.dictionary
                            let set = dictionary.withUnsafeBufferPointer { inflateSetDictionary(&stream, $0.baseAddress, uInt($0.count)) }
                            status = set == Z_OK ? inflate(&stream, Z_SYNC_FLUSH) : set
                        }
                        plain += out[0..<(out.count - Int(stream.avail_out))]
                    }
                    if plain.count > SPDYHeaderCodec.maximumBlockSize {
                        failure = "header block larger than \(SPDYHeaderCodec.maximumBlockSize) bytes"
                    } else if status == Z_BUF_ERROR || (status == Z_OK && stream.avail_in == 0 && stream.avail_out != 0) {
                        break // all input consumed
                    } else if status != Z_OK {
                        failure = "header block does not decompress (zlib \(status))"
                    }
                }
                stream.next_in = nil
            }
            if let failure { throw SPDYProtocolError(failure, stream: streamID) }
            return try parse(plain, stream: streamID)
        }

        private func parse(_ bytes: [UInt8], stream: UInt32) throws(SPDYProtocolError) -> SPDYHeaders {
            var reader = ByteReader(bytes)
            guard let count = reader.uint32() else { throw SPDYProtocolError("header block without a pair count", stream: stream) }
            guard count <= SPDYHeaderCodec.maximumPairs else { throw SPDYProtocolError("\(count) header pairs", stream: stream) }
            var pairs: [(name: String, value: String)] = []
            for _ in 0..<count {
                guard let nameLength = reader.uint32(), let name = reader.bytes(Int(nameLength)),
                      let valueLength = reader.uint32(), let value = reader.bytes(Int(valueLength)) else {
                    throw SPDYProtocolError("header block ends inside a pair", stream: stream)
                }
                guard !name.isEmpty, let nameText = String(validating: name, as: UTF8.self),
                      nameText == nameText.lowercased() else {
                    throw SPDYProtocolError("header name is empty, not UTF-8 or not lower case", stream: stream)
                }
                guard !SPDYHeaderCodec.forbiddenNames.contains(nameText) else {
                    throw SPDYProtocolError("header \"\(nameText)\" is not allowed", stream: stream)
                }
                guard !pairs.contains(where: { $0.name == nameText }) else {
                    throw SPDYProtocolError("header \"\(nameText)\" appears twice", stream: stream)
                }
                pairs.append((nameText, String(decoding: value, as: UTF8.self)))
            }
            guard reader.isAtEnd else { throw SPDYProtocolError("bytes after the last header pair", stream: stream) }
            return SPDYHeaders(pairs)
        }
    }
}

/// Reads big-endian fields from a byte array.
struct ByteReader {
    let bytes: [UInt8]
    var position = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var isAtEnd: Bool { position == bytes.count }

    mutating func uint32() -> UInt32? {
        guard let field = self.bytes(4) else { return nil }
        return field.reduce(0) { $0 << 8 | UInt32($1) }
    }

    mutating func bytes(_ count: Int) -> ArraySlice<UInt8>? {
        guard count >= 0, bytes.count - position >= count else { return nil }
        defer { position += count }
        return bytes[position..<position + count]
    }
}
