/// SPDY/3 frames, the framing of the `SPDY/3.1` upgrade that Kubernetes' exec, attach and
/// port-forward streams use between a kubelet (or crictl) and a runtime's streaming server.
///
/// All numbers are big-endian. A control frame starts with bit 31 set, the version (3) and a
/// type; a data frame with a 31-bit stream id. Header blocks are zlib-compressed with the SPDY/3
/// dictionary (``SPDYHeaderCodec``).
public enum SPDYFrame: Equatable, Sendable {
    case synStream(streamID: UInt32, associatedStreamID: UInt32, priority: UInt8, flags: UInt8, headers: SPDYHeaders)
    case synReply(streamID: UInt32, flags: UInt8, headers: SPDYHeaders)
    case rstStream(streamID: UInt32, status: SPDYResetStatus)
    case settings(flags: UInt8, values: [SPDYSetting])
    case ping(id: UInt32)
    case goAway(lastGoodStreamID: UInt32, status: UInt32)
    case headers(streamID: UInt32, flags: UInt8, headers: SPDYHeaders)
    case windowUpdate(streamID: UInt32, delta: UInt32)
    case data(streamID: UInt32, flags: UInt8, payload: [UInt8])

    /// FIN: the sender's last frame on the stream.
    public static let flagFin: UInt8 = 0x01
    /// SYN_STREAM: the receiver may not send on the stream.
    public static let flagUnidirectional: UInt8 = 0x02

    /// Control frame types.
    public enum ControlType: UInt16, Sendable, CustomStringConvertible {
        case synStream = 1, synReply = 2, rstStream = 3, settings = 4, ping = 6, goAway = 7, headers = 8, windowUpdate = 9

        /// As the SPDY/3 draft names it: `SYN_STREAM`, `PING`, ….
        public var description: String {
            switch self {
            case .synStream: "SYN_STREAM"
            case .synReply: "SYN_REPLY"
            case .rstStream: "RST_STREAM"
            case .settings: "SETTINGS"
            case .ping: "PING"
            case .goAway: "GOAWAY"
            case .headers: "HEADERS"
            case .windowUpdate: "WINDOW_UPDATE"
            }
        }
    }

    /// The stream this frame is on (0 for the session's frames).
    public var streamID: UInt32 {
        switch self {
        case .synStream(let id, _, _, _, _), .synReply(let id, _, _), .rstStream(let id, _), .headers(let id, _, _),
             .windowUpdate(let id, _), .data(let id, _, _):
            return id
        case .settings, .ping, .goAway:
            return 0
        }
    }

    /// Whether the frame ends its sender's side of the stream.
    public var isFin: Bool {
        switch self {
        case .synStream(_, _, _, let flags, _), .synReply(_, let flags, _), .headers(_, let flags, _), .data(_, let flags, _):
            return flags & Self.flagFin != 0
        default:
            return false
        }
    }
}

/// A header block: lower-case names, each with its value (several values are NUL-joined on the
/// wire, as SPDY/3 says).
public struct SPDYHeaders: Equatable, Sendable, ExpressibleByDictionaryLiteral {
    public private(set) var pairs: [(name: String, value: String)]

    public init(_ pairs: [(name: String, value: String)] = []) {
        self.pairs = pairs
    }

    public init(dictionaryLiteral elements: (String, String)...) {
        pairs = elements.map { (name: $0.0, value: $0.1) }
    }

    /// The value of `name` (compared case-insensitively, as Kubernetes' servers do).
    public subscript(name: String) -> String? {
        let lowered = name.lowercased()
        return pairs.first { $0.name.lowercased() == lowered }?.value
    }

    public static func == (lhs: SPDYHeaders, rhs: SPDYHeaders) -> Bool {
        lhs.pairs.count == rhs.pairs.count && zip(lhs.pairs, rhs.pairs).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

/// RST_STREAM status codes.
public enum SPDYResetStatus: UInt32, Sendable {
    case protocolError = 1, invalidStream = 2, refusedStream = 3, unsupportedVersion = 4, cancel = 5, internalError = 6,
         flowControlError = 7, streamInUse = 8, streamAlreadyClosed = 9, invalidCredentials = 10, frameTooLarge = 11
}

/// One SETTINGS entry: 8 flag bits, a 24-bit id, a 32-bit value.
public struct SPDYSetting: Equatable, Sendable {
    public var flags: UInt8
    public var id: UInt32
    public var value: UInt32

    public init(flags: UInt8, id: UInt32, value: UInt32) {
        self.flags = flags
        self.id = id
        self.value = value
    }
}

/// Why bytes are not SPDY/3 as this server accepts it: the session is then reset (GOAWAY with
/// PROTOCOL_ERROR) or, for `stream`, just that stream.
public struct SPDYProtocolError: Error, Equatable, CustomStringConvertible {
    public var message: String
    /// The stream at fault, when only it is.
    public var stream: UInt32?

    public init(_ message: String, stream: UInt32? = nil) {
        self.message = message
        self.stream = stream
    }

    public var description: String { "SPDY: " + message + (stream.map { " (stream \($0))" } ?? "") }
}
