/// Turns a byte stream into frames (``SPDYFrameDecoder``) and frames into bytes
/// (``SPDYFrameEncoder``). Each owns its direction's header compression, so a connection has one
/// of each, used in order.
public final class SPDYFrameDecoder {
    private var buffer: [UInt8] = []
    private var start = 0
    private let headers = SPDYHeaderCodec.Decompressor()
    /// Largest frame payload accepted (the 24-bit length allows 16 MiB).
    public let maximumPayload: Int

    public init(maximumPayload: Int = 1 << 20) {
        self.maximumPayload = maximumPayload
    }

    /// Adds bytes read from the connection.
    public func feed<Bytes: Collection>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        } else if start > 65536 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer += bytes
    }

    /// The next complete frame, or nil until more bytes come. A control frame of an unknown type
    /// is skipped (SPDY/3 says to ignore it); an error ends the session (or, with `stream`, resets
    /// that stream).
    public func next() throws(SPDYProtocolError) -> SPDYFrame? {
        while true {
            let available = buffer.count - start
            guard available >= 8 else { return nil }
            let header = buffer[start..<start + 8]
            let length = Int(header[start + 5]) << 16 | Int(header[start + 6]) << 8 | Int(header[start + 7])
            let flags = header[start + 4]
            if length > maximumPayload {
                throw SPDYProtocolError("frame of \(length) bytes (at most \(maximumPayload))")
            }
            guard available >= 8 + length else { return nil }
            let payload = Array(buffer[start + 8..<start + 8 + length])
            let first = UInt32(header[start]) << 24 | UInt32(header[start + 1]) << 16 | UInt32(header[start + 2]) << 8 | UInt32(header[start + 3])
            start += 8 + length
            if first & 0x8000_0000 == 0 {
                return .data(streamID: first, flags: flags, payload: payload)
            }
            let version = (first >> 16) & 0x7fff
            guard version == 3 else { throw SPDYProtocolError("control frame of version \(version)") }
            guard let type = SPDYFrame.ControlType(rawValue: UInt16(first & 0xffff)) else { continue }
            return try control(type, flags: flags, payload: payload)
        }
    }

    private func control(_ type: SPDYFrame.ControlType, flags: UInt8, payload: [UInt8]) throws(SPDYProtocolError) -> SPDYFrame {
        var reader = ByteReader(payload)
        func field() throws(SPDYProtocolError) -> UInt32 {
            guard let value = reader.uint32() else { throw SPDYProtocolError("\(type) frame too short") }
            return value
        }
        func exactly(_ count: Int) throws(SPDYProtocolError) {
            guard payload.count == count else { throw SPDYProtocolError("\(type) frame of \(payload.count) bytes, not \(count)") }
        }
        switch type {
        case .synStream:
            let id = try field() & 0x7fff_ffff
            let associated = try field() & 0x7fff_ffff
            guard let priority = reader.bytes(2) else { throw SPDYProtocolError("SYN_STREAM frame too short") }
            guard id != 0 else { throw SPDYProtocolError("SYN_STREAM for stream 0") }
            let block = try headers.decompress(payload[reader.position...], stream: id)
            return .synStream(streamID: id, associatedStreamID: associated, priority: priority.first! >> 5, flags: flags, headers: block)
        case .synReply, .headers:
            let id = try field() & 0x7fff_ffff
            let block = try headers.decompress(payload[reader.position...], stream: id)
            return type == .synReply ? .synReply(streamID: id, flags: flags, headers: block) : .headers(streamID: id, flags: flags, headers: block)
        case .rstStream:
            try exactly(8)
            let id = try field() & 0x7fff_ffff
            let code = try field()
            guard let status = SPDYResetStatus(rawValue: code) else { throw SPDYProtocolError("RST_STREAM with status \(code)") }
            return .rstStream(streamID: id, status: status)
        case .settings:
            let count = try field()
            guard payload.count == 4 + Int(count) * 8 else { throw SPDYProtocolError("SETTINGS with \(count) entries in \(payload.count) bytes") }
            var values: [SPDYSetting] = []
            for _ in 0..<count {
                let head = try field()
                values.append(SPDYSetting(flags: UInt8(head >> 24), id: head & 0xff_ffff, value: try field()))
            }
            return .settings(flags: flags, values: values)
        case .ping:
            try exactly(4)
            return .ping(id: try field())
        case .goAway:
            try exactly(8)
            return .goAway(lastGoodStreamID: try field() & 0x7fff_ffff, status: try field())
        case .windowUpdate:
            try exactly(8)
            return .windowUpdate(streamID: try field() & 0x7fff_ffff, delta: try field() & 0x7fff_ffff)
        }
    }
}

/// Writes frames; header blocks go through this side's compressor.
public final class SPDYFrameEncoder {
    private let headers = SPDYHeaderCodec.Compressor()

    public init() {}

    /// The bytes of `frame`.
    public func encode(_ frame: SPDYFrame) -> [UInt8] {
        switch frame {
        case .data(let id, let flags, let payload):
            return SPDYHeaderCodec.bigEndian(id & 0x7fff_ffff) + [flags] + length(payload.count) + payload
        case .synStream(let id, let associated, let priority, let flags, let block):
            return control(.synStream, flags: flags,
                           SPDYHeaderCodec.bigEndian(id) + SPDYHeaderCodec.bigEndian(associated) + [priority << 5, 0] + headers.compress(block))
        case .synReply(let id, let flags, let block):
            return control(.synReply, flags: flags, SPDYHeaderCodec.bigEndian(id) + headers.compress(block))
        case .headers(let id, let flags, let block):
            return control(.headers, flags: flags, SPDYHeaderCodec.bigEndian(id) + headers.compress(block))
        case .rstStream(let id, let status):
            return control(.rstStream, flags: 0, SPDYHeaderCodec.bigEndian(id) + SPDYHeaderCodec.bigEndian(status.rawValue))
        case .settings(let flags, let values):
            var payload = SPDYHeaderCodec.bigEndian(UInt32(values.count))
            for value in values {
                payload += SPDYHeaderCodec.bigEndian(UInt32(value.flags) << 24 | value.id & 0xff_ffff) + SPDYHeaderCodec.bigEndian(value.value)
            }
            return control(.settings, flags: flags, payload)
        case .ping(let id):
            return control(.ping, flags: 0, SPDYHeaderCodec.bigEndian(id))
        case .goAway(let last, let status):
            return control(.goAway, flags: 0, SPDYHeaderCodec.bigEndian(last) + SPDYHeaderCodec.bigEndian(status))
        case .windowUpdate(let id, let delta):
            return control(.windowUpdate, flags: 0, SPDYHeaderCodec.bigEndian(id) + SPDYHeaderCodec.bigEndian(delta))
        }
    }

    private func control(_ type: SPDYFrame.ControlType, flags: UInt8, _ payload: [UInt8]) -> [UInt8] {
        [0x80, 0x03, UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xff), flags] + length(payload.count) + payload
    }

    private func length(_ count: Int) -> [UInt8] {
        [UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff)]
    }
}
