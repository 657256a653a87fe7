import Foundation
import Glibc
import PodshimRuntime

/// The `podshim serve` config file (/etc/podshim/podshim.conf): `key = value` lines whose keys
/// are the long options of `podshim serve` without the dashes.
///
/// ```
/// # comment
/// socket = /run/podshim/podshim.sock
/// cgroup-driver = systemd   # a comment may follow a value after a blank
/// require-cgroups = true
/// ```
///
/// Blank lines and lines starting with `#` are ignored; a value may be wrapped in double quotes
/// (then it may hold ` #`). An unknown key, a key given twice, a line without `=` or a bad value
/// is an error naming the file, the line and the key. Paths must be absolute.
struct ServeConfigFile {
    /// The default location; a missing file there is not an error.
    static let defaultPath = "/etc/podshim/podshim.conf"

    /// The values a file sets; nil = not set (the command line or the built-in default decides).
    struct Values: Equatable {
        var socket: String?
        var socketGroup: String?
        var stateDir: String?
        var root: String?
        var imageDir: String?
        var logDir: String?
        var pauseBinary: String?
        var cgroupRoot: String?
        var cgroupDriver: CgroupDriver?
        var requireCgroups: Bool?
        var podPidsLimit: Int64?
        var network: NetworkOptions.Mode?
        var cniConfDir: String?
        var cniBinDir: String?
        var cniTimeout: Double?
        var streamAddress: String?
        var streamPort: Int?
        var streamIdleTimeout: Int64?
        var streamTLSCert: String?
        var streamTLSKey: String?
        var registryConfig: String?
    }

    /// `/etc/podshim/podshim.conf:7: cgroup-driver: "cgroup" is not one of cgroupfs, systemd`.
    struct Error: Swift.Error, Equatable, CustomStringConvertible {
        var path: String
        /// 1-based; 0 when the file as a whole is the problem (missing, unreadable).
        var line: Int
        /// The key the line sets, when it got that far.
        var key: String?
        var message: String

        var description: String {
            let location = line > 0 ? "\(path):\(line)" : path
            return key.map { "\(location): \($0): \(message)" } ?? "\(location): \(message)"
        }
    }

    /// Every key the file accepts, in the order `podshim serve --help` lists them.
    static let keys = [
        "socket", "socket-group", "state-dir", "root", "image-dir", "log-dir", "pause-binary",
        "cgroup-root", "cgroup-driver", "require-cgroups", "pod-pids-limit",
        "network", "cni-conf-dir", "cni-bin-dir", "cni-timeout", "stream-address", "stream-port", "stream-idle-timeout",
        "stream-tls-cert", "stream-tls-key", "registry-config",
    ]

    /// Parses a file's text; `path` only names the file in errors.
    static func parse(text: String, path: String = defaultPath) throws(Error) -> Values {
        var values = Values()
        var seen: [String: Int] = [:]
        // "\r\n" is one Character in Swift: split on it as well as on "\n".
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
        for (index, rawLine) in lines.enumerated() {
            let number = index + 1
            let line = rawLine.trimmingCharacters(in: .whitespaces.union(CharacterSet(charactersIn: "\r")))
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let equals = line.firstIndex(of: "=") else {
                throw Error(path: path, line: number, key: nil, message: "expected `key = value`, found \"\(line)\"")
            }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces)
            func fail(_ message: String) -> Error { Error(path: path, line: number, key: key, message: message) }
            guard keys.contains(key) else {
                throw fail(key.isEmpty ? "a key is missing before `=`" : "unknown key (known: \(keys.joined(separator: ", ")))")
            }
            if let first = seen[key] { throw fail("given twice (first on line \(first))") }
            seen[key] = number
            let value = try unquote(String(line[line.index(after: equals)...]), fail)
            guard !value.isEmpty else { throw fail("the value is empty (comment the line out to use the default)") }

            func absolutePath() throws(Error) -> String {
                guard value.hasPrefix("/") else { throw fail("\"\(value)\" is not an absolute path") }
                return value
            }
            switch key {
            case "socket": values.socket = try absolutePath()
            case "state-dir": values.stateDir = try absolutePath()
            case "root": values.root = try absolutePath()
            case "image-dir": values.imageDir = try absolutePath()
            case "log-dir": values.logDir = try absolutePath()
            case "pause-binary": values.pauseBinary = try absolutePath()
            case "cgroup-root": values.cgroupRoot = try absolutePath()
            case "socket-group":
                guard !value.contains(where: \.isWhitespace) else { throw fail("\"\(value)\" is not a group name or gid") }
                values.socketGroup = value
            case "cgroup-driver":
                guard let driver = CgroupDriver(rawValue: value) else {
                    throw fail("\"\(value)\" is not one of \(CgroupDriver.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                values.cgroupDriver = driver
            case "require-cgroups":
                switch value {
                case "true": values.requireCgroups = true
                case "false": values.requireCgroups = false
                default: throw fail("\"\(value)\" is not true or false")
                }
            case "network":
                guard let mode = NetworkOptions.Mode(rawValue: value), mode != .host else {
                    throw fail("\"\(value)\" is not one of cni, none")
                }
                values.network = mode
            case "cni-conf-dir": values.cniConfDir = try absolutePath()
            case "cni-bin-dir":
                guard value.split(separator: ":").allSatisfy({ $0.hasPrefix("/") }) else {
                    throw fail("\"\(value)\" is not a ':'-separated list of absolute paths")
                }
                values.cniBinDir = value
            case "cni-timeout":
                guard let seconds = Double(value), seconds > 0 else { throw fail("\"\(value)\" is not a number of seconds above 0") }
                values.cniTimeout = seconds
            case "stream-address":
                guard value.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == ":" }) else { throw fail("\"\(value)\" is not an IP address") }
                values.streamAddress = value
            case "stream-port":
                guard let port = Int(value), (0...65535).contains(port) else { throw fail("\"\(value)\" is not a port (0…65535)") }
                values.streamPort = port
            case "stream-idle-timeout":
                guard let seconds = Int64(value), seconds >= 1 else { throw fail("\"\(value)\" is not a whole number of seconds of at least 1") }
                values.streamIdleTimeout = seconds
            case "stream-tls-cert": values.streamTLSCert = try absolutePath()
            case "stream-tls-key": values.streamTLSKey = try absolutePath()
            case "registry-config": values.registryConfig = try absolutePath()
            case "pod-pids-limit":
                guard let limit = Int64(value), limit >= 1 else { throw fail("\"\(value)\" is not a whole number of at least 1") }
                values.podPidsLimit = limit
            default:
                throw fail("unknown key")
            }
        }
        return values
    }

    /// Reads and parses the file at `path`. A missing file is no error unless `required`
    /// (the path was given with --config): then it is one, like an unreadable file always is.
    static func load(path: String, required: Bool) throws(Error) -> Values {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT && !required { return Values() }
            throw Error(path: path, line: 0, key: nil, message: String(cString: strerror(code)))
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        let data: Data
        do {
            data = try handle.readToEnd() ?? Data()
        } catch {
            throw Error(path: path, line: 0, key: nil, message: "cannot be read: \(error)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw Error(path: path, line: 0, key: nil, message: "is not UTF-8 text")
        }
        return try parse(text: text, path: path)
    }

    /// The value after `=`: blanks trimmed, a trailing ` # comment` dropped, one pair of double
    /// quotes removed (inside them `#` is literal).
    private static func unquote(_ raw: String, _ fail: (String) -> Error) throws(Error) -> String {
        let trimmed = raw.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("\"") {
            let rest = trimmed.dropFirst()
            guard let close = rest.firstIndex(of: "\"") else { throw fail("the closing quote is missing") }
            let after = rest[rest.index(after: close)...].trimmingCharacters(in: .whitespaces)
            guard after.isEmpty || after.hasPrefix("#") else { throw fail("unexpected text after the closing quote: \"\(after)\"") }
            return String(rest[..<close])
        }
        // A comment after a value needs a blank before `#`, so `a#b` stays a value.
        var value = Substring(trimmed)
        if let hash = value.indices.first(where: { value[$0] == "#" && $0 > value.startIndex && value[value.index(before: $0)].isWhitespace }) {
            value = value[..<hash]
        }
        return value.trimmingCharacters(in: .whitespaces)
    }
}
