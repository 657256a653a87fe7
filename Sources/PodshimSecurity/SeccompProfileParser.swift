import Glibc
import PodshimSystem

extension SeccompProfileDocument {
    /// The largest profile file read (Docker's default profile is about 20 KB).
    static let maximumFileSize = 4 << 20

    /// Reads and parses a profile file. Errors name `path`.
    public static func load(path: String) throws(SeccompError) -> SeccompProfileDocument {
        let bytes: [UInt8]
        do {
            bytes = try readProfileFile(path)
        } catch {
            throw SeccompError(profile: path, .unreadable(error))
        }
        return try parse(bytes, source: path)
    }

    /// Parses a profile from JSON. `source` names it in errors (the file's path).
    ///
    /// Unknown keys are ignored and `null` counts as absent, as Go's decoder in containerd and Docker
    /// treats them; a wrong type, an unknown action or operator, an argument index outside 0…5, an
    /// `errnoRet` on an action that takes none, or `name` together with `names` is an error naming
    /// its JSON location.
    public static func parse(_ json: [UInt8], source: String) throws(SeccompError) -> SeccompProfileDocument {
        let value: JSONValue
        do {
            value = try JSONValue.parse(json)
        } catch {
            throw SeccompError(profile: source, .invalidJSON(error.description))
        }
        return try ProfileDecoder(source: source).document(JSONNode(value: value, path: ""))
    }
}

/// A JSON value and where it is in the document (`syscalls[3].args[0].op`).
private struct JSONNode {
    let value: JSONValue
    let path: String

    func child(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
}

private struct ProfileDecoder {
    let source: String

    func fail(_ path: String, _ message: String) -> SeccompError {
        SeccompError(profile: source, .invalidProfile(location: path, message: message))
    }

    // MARK: Typed access

    func members(_ node: JSONNode) throws(SeccompError) -> [String: JSONNode] {
        guard case .object(let pairs) = node.value else {
            throw fail(node.path, "expected \(node.path.isEmpty ? "a JSON object" : "an object"), found \(node.value.kindDescription)")
        }
        var result: [String: JSONNode] = [:]
        for (key, value) in pairs {
            if value == .null { result[key] = nil; continue }  // null is absent; a later key wins
            result[key] = JSONNode(value: value, path: node.child(key))
        }
        return result
    }

    func elements(_ node: JSONNode) throws(SeccompError) -> [JSONNode] {
        guard case .array(let values) = node.value else {
            throw fail(node.path, "expected an array, found \(node.value.kindDescription)")
        }
        return values.enumerated().map { JSONNode(value: $1, path: "\(node.path)[\($0)]") }
    }

    func string(_ node: JSONNode) throws(SeccompError) -> String {
        guard case .string(let text) = node.value else {
            throw fail(node.path, "expected a string, found \(node.value.kindDescription)")
        }
        return text
    }

    func strings(_ node: JSONNode?) throws(SeccompError) -> [String] {
        guard let node else { return [] }
        var result: [String] = []
        for element in try elements(node) { result.append(try string(element)) }
        return result
    }

    func unsigned(_ node: JSONNode) throws(SeccompError) -> UInt64 {
        guard case .number(let literal) = node.value else {
            throw fail(node.path, "expected a non-negative integer, found \(node.value.kindDescription)")
        }
        guard literal.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else {
            throw fail(node.path, "expected a non-negative integer, found \(literal)")
        }
        guard let value = UInt64(literal) else {
            throw fail(node.path, "expected an integer no larger than \(UInt64.max), found \(literal)")
        }
        return value
    }

    func unsigned(_ node: JSONNode, max maximum: UInt64) throws(SeccompError) -> UInt64 {
        let value = try unsigned(node)
        guard value <= maximum else { throw fail(node.path, "expected 0 to \(maximum), found \(value)") }
        return value
    }

    func required(_ members: [String: JSONNode], _ key: String, in node: JSONNode) throws(SeccompError) -> JSONNode {
        guard let member = members[key] else { throw fail(node.child(key), "required") }
        return member
    }

    // MARK: The profile

    func document(_ node: JSONNode) throws(SeccompError) -> SeccompProfileDocument {
        let fields = try members(node)
        let defaultAction = try action(try required(fields, "defaultAction", in: node))
        var defaultErrnoRet: UInt16? = nil
        if let errnoNode = fields["defaultErrnoRet"] {
            defaultErrnoRet = try errnoRet(errnoNode, for: defaultAction)
        }
        let architectures = try strings(fields["architectures"])
        var archMap: [SeccompArchitectureEntry] = []
        if let mapNode = fields["archMap"] {
            for entryNode in try elements(mapNode) {
                let entry = try members(entryNode)
                archMap.append(SeccompArchitectureEntry(
                    architecture: try string(try required(entry, "architecture", in: entryNode)),
                    subArchitectures: try strings(entry["subArchitectures"])))
            }
        }
        if !architectures.isEmpty && !archMap.isEmpty {
            throw fail("", "both \"architectures\" and \"archMap\" are given; use one")
        }
        let flags = try strings(fields["flags"])
        var syscalls: [SeccompSyscallRule] = []
        if let syscallsNode = fields["syscalls"] {
            for ruleNode in try elements(syscallsNode) { syscalls.append(try rule(ruleNode)) }
        }
        return SeccompProfileDocument(
            defaultAction: defaultAction, defaultErrnoRet: defaultErrnoRet, architectures: architectures,
            archMap: archMap, flags: flags, syscalls: syscalls)
    }

    func rule(_ node: JSONNode) throws(SeccompError) -> SeccompSyscallRule {
        let fields = try members(node)
        var names: [String]
        switch (fields["names"], fields["name"]) {
        case (.some, .some):
            throw fail(node.path, "both \"name\" and \"names\" are given; use one")
        case (.some(let namesNode), nil):
            names = []
            for element in try elements(namesNode) {
                let name = try string(element)
                guard !name.isEmpty else { throw fail(element.path, "empty syscall name") }
                names.append(name)
            }
        case (nil, .some(let nameNode)):
            let name = try string(nameNode)
            guard !name.isEmpty else { throw fail(nameNode.path, "empty syscall name") }
            names = [name]
        case (nil, nil):
            throw fail(node.child("names"), "required")
        }
        let action = try action(try required(fields, "action", in: node))
        var errnoRet: UInt16? = nil
        if let errnoNode = fields["errnoRet"] { errnoRet = try self.errnoRet(errnoNode, for: action) }
        var args: [SeccompArgument] = []
        if let argsNode = fields["args"] {
            for argNode in try elements(argsNode) { args.append(try argument(argNode)) }
        }
        return SeccompSyscallRule(
            names: names, action: action, errnoRet: errnoRet, args: args,
            includes: try fields["includes"].map { (n: JSONNode) throws(SeccompError) in try condition(n) },
            excludes: try fields["excludes"].map { (n: JSONNode) throws(SeccompError) in try condition(n) })
    }

    func action(_ node: JSONNode) throws(SeccompError) -> SeccompAction {
        let name = try string(node)
        if let action = SeccompAction(rawValue: name) { return action }
        if name == "SCMP_ACT_NOTIFY" { throw fail(node.path, "unsupported action \"\(name)\"") }
        throw fail(node.path, "unknown action \"\(name)\"")
    }

    func errnoRet(_ node: JSONNode, for action: SeccompAction) throws(SeccompError) -> UInt16 {
        let value = try unsigned(node, max: UInt64(UInt16.max))
        guard action.takesValue else {
            throw fail(node.path, "only SCMP_ACT_ERRNO and SCMP_ACT_TRACE take a value, not \(action.rawValue)")
        }
        return UInt16(value)
    }

    func argument(_ node: JSONNode) throws(SeccompError) -> SeccompArgument {
        let fields = try members(node)
        let index = try unsigned(try required(fields, "index", in: node), max: 5)
        let opNode = try required(fields, "op", in: node)
        let opName = try string(opNode)
        guard let op = SeccompOperator(rawValue: opName) else {
            throw fail(opNode.path, "unknown operator \"\(opName)\"")
        }
        let value = try fields["value"].map { (n: JSONNode) throws(SeccompError) in try unsigned(n) } ?? 0
        let valueTwo = try fields["valueTwo"].map { (n: JSONNode) throws(SeccompError) in try unsigned(n) } ?? 0
        return SeccompArgument(index: UInt32(index), value: value, valueTwo: valueTwo, op: op)
    }

    func condition(_ node: JSONNode) throws(SeccompError) -> SeccompRuleCondition {
        let fields = try members(node)
        var minKernel: SeccompKernelVersion? = nil
        if let kernelNode = fields["minKernel"] {
            let text = try string(kernelNode)
            if !text.isEmpty {
                guard let version = SeccompKernelVersion(parsing: text) else {
                    throw fail(kernelNode.path, "invalid kernel version \"\(text)\", expected \"<kernel>.<major>\"")
                }
                minKernel = version
            }
        }
        return SeccompRuleCondition(
            caps: try strings(fields["caps"]), arches: try strings(fields["arches"]), minKernel: minKernel)
    }
}

/// The bytes of a regular file of at most `maximumFileSize` bytes.
private func readProfileFile(_ path: String) throws(Errno) -> [UInt8] {
    var fd: Int32
    repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
    guard fd >= 0 else { throw Errno.last }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 {
            if errno == EINTR { continue }
            throw Errno.last
        }
        if n == 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<n])
        if bytes.count > SeccompProfileDocument.maximumFileSize { throw Errno.fileTooLarge }
    }
}
