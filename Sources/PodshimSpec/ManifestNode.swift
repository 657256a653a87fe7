import Yams

/// A YAML node together with the field path that led to it.
///
/// The typed accessors turn the node into a Swift value or throw a ``ManifestError`` that names
/// the path, so parsing code never has to build paths or messages by hand.
///
/// Scalars are judged by how they were written, not by the type YAML would resolve them to:
/// any scalar is accepted where a string is expected (`8080` is the string `"8080"`), but only an
/// unquoted, untagged decimal is an integer and only unquoted `true`/`false` are booleans.
struct ManifestNode {
    /// The YAML node.
    let node: Node
    /// The field path of the node, such as `spec.containers[0].command`.
    let path: String

    /// The single YAML document in `yaml`, at the empty path, or nil when there is none.
    /// A YAML syntax error (including a duplicate key or a second document) is thrown at the
    /// path `manifest`, with its line and column.
    static func document(yaml: String) throws(ManifestError) -> ManifestNode? {
        try YAMLBudget.check(yaml)
        do {
            return try Yams.compose(yaml: yaml).map { ManifestNode(node: $0, path: "") }
        } catch {
            throw ManifestError(path: "manifest", message: describe(yamlError: error))
        }
    }

    /// The documents of the YAML stream `yaml` that are not empty, each at the empty path with
    /// its position in the stream (empty and null documents count, so `index` is what a reader
    /// counts between the `---` lines). The ``YAMLBudget`` bounds the stream as a whole. A YAML
    /// syntax error, in any document, is thrown at the path `manifest`, with its line and column.
    static func documents(yaml: String) throws(ManifestError) -> [(index: Int, node: ManifestNode)] {
        try YAMLBudget.check(yaml)
        do {
            let parser = try Parser(yaml: yaml)
            var documents: [(index: Int, node: ManifestNode)] = []
            var index = 0
            while let root = try parser.nextRoot() {
                let node = ManifestNode(node: root, path: "")
                if !node.isNull { documents.append((index, node)) }
                index += 1
            }
            return documents
        } catch {
            throw ManifestError(path: "manifest", message: describe(yamlError: error))
        }
    }

    /// The line the node starts on (1 for the first), when the parser recorded it.
    var line: Int? { node.mark?.line }

    /// An error about this node.
    func error(_ message: String) -> ManifestError {
        ManifestError(path: path, message: message)
    }

    /// Whether the node is a YAML null (`~`, `null`, or nothing at all), which stands for an absent value.
    var isNull: Bool {
        guard let scalar = plainScalar else { return false }
        return ["", "~", "null", "Null", "NULL"].contains(scalar)
    }

    /// The node's text when it is a plain (unquoted, untagged) scalar.
    ///
    /// Yams resolves a scalar's tag in place when the node is hashed (as its duplicate-key check
    /// does to keys), so "untagged" means: no tag yet, or the one the default resolver gives the text.
    private var plainScalar: String? {
        guard case .scalar(let scalar) = node, scalar.style == .plain else { return nil }
        let tag = scalar.tag.description
        guard tag == Tag.Name.implicit.rawValue
                || tag == Resolver.default.resolveTag(of: Node(scalar.string)).rawValue else {
            return nil
        }
        return scalar.string
    }

    /// The node as a string: any scalar except null, quoted or not. Strings may not contain NUL,
    /// since every string ends up in a path, an environment or an argument vector.
    func string() throws(ManifestError) -> String {
        guard case .scalar(let scalar) = node, !isNull else { throw error("must be a string") }
        guard !scalar.string.unicodeScalars.contains("\0") else {
            throw error("must not contain a NUL character")
        }
        return scalar.string
    }

    /// The node as a boolean: the plain scalar `true` or `false`.
    func bool() throws(ManifestError) -> Bool {
        switch plainScalar {
        case "true": return true
        case "false": return false
        default: throw error("must be a boolean")
        }
    }

    /// The node as an integer: a plain decimal scalar with an optional sign, no quotes, no fraction.
    func int() throws(ManifestError) -> Int {
        guard let text = plainScalar, Self.isDecimalInteger(text), let value = Int(text) else {
            throw error("must be an integer")
        }
        return value
    }

    /// Whether `text` is `[-+]?(0|[1-9][0-9]*)`. Leading zeros are refused because YAML 1.1
    /// reads `010` as octal and YAML 1.2 as decimal.
    private static func isDecimalInteger(_ text: String) -> Bool {
        var digits = Substring(text)
        if let sign = digits.first, sign == "-" || sign == "+" { digits = digits.dropFirst() }
        guard let first = digits.first, digits.allSatisfy({ ("0"..."9").contains($0) }) else { return false }
        return first != "0" || digits.count == 1
    }

    /// The node's elements, each with its indexed path (`path[0]`, `path[1]`, …).
    func list() throws(ManifestError) -> [ManifestNode] {
        guard case .sequence(let sequence) = node else { throw error("must be a list") }
        return sequence.enumerated().map { index, element in
            ManifestNode(node: element, path: "\(path)[\(index)]")
        }
    }

    /// The node as a list of strings; any element that is not a string fails the whole list.
    func stringList() throws(ManifestError) -> [String] {
        guard case .sequence(let sequence) = node else { throw error("must be a list of strings") }
        var strings: [String] = []
        for (index, element) in sequence.enumerated() {
            guard case .scalar(let scalar) = element,
                  !ManifestNode(node: element, path: path).isNull else {
                throw error("must be a list of strings")
            }
            guard !scalar.string.unicodeScalars.contains("\0") else {
                throw ManifestError(path: "\(path)[\(index)]", message: "must not contain a NUL character")
            }
            strings.append(scalar.string)
        }
        return strings
    }

    /// The node as a mapping from strings to strings (labels, annotations).
    /// A value that is not a string is reported at its own path (`metadata.labels.app`).
    func stringMap() throws(ManifestError) -> [String: String] {
        let entries = try entries()
        var map: [String: String] = [:]
        for (key, value) in entries {
            map[key] = try value.string()
        }
        return map
    }

    /// The node as a mapping that accepts only the keys in `accepted`; the first other key (in
    /// document order) is an error at the key's path, `unknown field` unless `unknownKey` says
    /// otherwise. A null node is an empty mapping.
    func mapping(
        accepting accepted: Set<String>, unknownKey: String = "unknown field"
    ) throws(ManifestError) -> ManifestMapping {
        if isNull { return ManifestMapping(path: path, entries: []) }
        let entries = try entries()
        if let (_, unknown) = entries.first(where: { !accepted.contains($0.key) }) {
            throw unknown.error(unknownKey)
        }
        return ManifestMapping(path: path, entries: entries)
    }

    /// The node as a list of mappings, each accepting only the keys in `accepted`.
    func mappingList(accepting accepted: Set<String>) throws(ManifestError) -> [ManifestMapping] {
        var mappings: [ManifestMapping] = []
        for element in try list() {
            guard case .mapping = element.node else { throw element.error("must be a mapping") }
            mappings.append(try element.mapping(accepting: accepted))
        }
        return mappings
    }

    /// The mapping's keys and values in document order, each value with its path.
    private func entries() throws(ManifestError) -> [(key: String, value: ManifestNode)] {
        guard case .mapping(let mapping) = node else { throw error("must be a mapping") }
        var entries: [(key: String, value: ManifestNode)] = []
        for (keyNode, valueNode) in mapping {
            guard case .scalar(let key) = keyNode else { throw error("keys must be strings") }
            entries.append((key.string, ManifestNode(node: valueNode, path: Self.path(path, key.string))))
        }
        return entries
    }

    /// The path of field `key` under `parent`: `parent.key`, or `parent["key"]` when the key
    /// holds characters that would make the path ambiguous (`metadata.labels["app.kubernetes.io/name"]`).
    static func path(_ parent: String, _ key: String) -> String {
        let simple = !key.isEmpty && key.unicodeScalars.allSatisfy { scalar in
            ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) || ("0"..."9").contains(scalar)
                || scalar == "_" || scalar == "-" || scalar == "/"
        }
        guard simple else {
            var quoted = "\""
            for character in key {
                if character == "\"" || character == "\\" { quoted.append("\\") }
                quoted.append(character)
            }
            return "\(parent)[\(quoted)\"]"
        }
        return parent.isEmpty ? key : "\(parent).\(key)"
    }
}

// MARK: - YAML syntax errors

extension ManifestNode {
    /// A one-line description of an error from the YAML parser.
    private static func describe(yamlError error: any Error) -> String {
        guard let error = error as? YamlError else { return "invalid YAML: \(error)" }
        func located(_ problem: String, _ mark: Mark, _ context: YamlError.Context?) -> String {
            let prefix = "invalid YAML at line \(mark.line), column \(mark.column): "
            guard let context else { return prefix + problem }
            // libyaml pairs a context with a problem: "while parsing a block mapping" with "did
            // not find expected key", or "expected a single document" with "but found another".
            if problem.hasPrefix("but ") { return prefix + "\(context.text), \(problem)" }
            return prefix + "\(problem) (\(context.text) at line \(context.mark.line), column \(context.mark.column))"
        }
        switch error {
        case let .scanner(context, problem, mark, _),
             let .parser(context, problem, mark, _),
             let .composer(context, problem, mark, _):
            return located(problem, mark, context)
        case let .duplicatedKeysInMapping(duplicates, context):
            let keys = duplicates.map { "\"\($0)\"" }.joined(separator: ", ")
            return "invalid YAML at line \(context.mark.line), column \(context.mark.column): duplicate key \(keys)"
        case let .reader(problem, _, _, _):
            return "invalid YAML: \(problem)"
        default:
            return "invalid YAML: \(error)"
        }
    }
}
