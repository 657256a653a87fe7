import CYaml

/// Bounds what a manifest may cost before it is composed: its size, its nesting and the number of
/// nodes once every alias is expanded. A "billion laughs" document of a few hundred bytes (aliases
/// of aliases, used as mapping keys that get hashed) would otherwise cost minutes of CPU; with
/// these limits it fails in microseconds, while any real Pod manifest is far below them.
///
/// One pass of libyaml's event parser (the one Yams uses): each node counts 1, an alias counts the
/// nodes of what it names, a collection the sum of its children.
///
/// The limits hold for the whole stream, every document together (``ManifestParser/parseAll(yaml:)``),
/// and anchors are not forgotten at a document's end: Yams' composer resolves an alias to an anchor
/// of an earlier document, so a bomb can be split across documents.
enum YAMLBudget {
    /// Bytes of manifest text.
    static let maximumBytes = 1 << 20
    /// Nodes after expanding aliases.
    static let maximumNodes = 100_000
    /// Nested collections.
    static let maximumDepth = 64

    /// Throws at the path `manifest` when `yaml` exceeds a limit. Syntax errors are left to the
    /// composer, which describes them with line and column.
    static func check(_ yaml: String) throws(ManifestError) {
        guard yaml.utf8.count <= maximumBytes else {
            throw ManifestError(path: "manifest", message: "larger than \(maximumBytes) bytes")
        }
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else { return }
        defer { yaml_parser_delete(&parser) }
        var bytes = Array(yaml.utf8)
        try bytes.withUnsafeMutableBufferPointer { (buffer: inout UnsafeMutableBufferPointer<UInt8>) throws(ManifestError) in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var anchors: [String: Int] = [:]
            /// Open collections: their anchor and their nodes so far.
            var open: [(anchor: String?, nodes: Int)] = []
            var total = 0

            func add(_ nodes: Int, anchor: String?) throws(ManifestError) {
                if let anchor { anchors[anchor] = nodes }
                if open.isEmpty {
                    total += nodes
                } else {
                    open[open.count - 1].nodes += nodes
                }
                if total + open.reduce(0, { $0 + $1.nodes }) > maximumNodes {
                    throw ManifestError(path: "manifest", message: "more than \(maximumNodes) nodes once its aliases are expanded")
                }
            }

            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else { return } // a syntax error: the composer reports it
                defer { yaml_event_delete(&event) }
                switch event.type {
                case YAML_STREAM_END_EVENT:
                    return
                case YAML_SCALAR_EVENT:
                    try add(1, anchor: Self.string(event.data.scalar.anchor))
                case YAML_ALIAS_EVENT:
                    let name = Self.string(event.data.alias.anchor) ?? ""
                    try add(anchors[name] ?? 1, anchor: nil)
                case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                    let anchor = event.type == YAML_SEQUENCE_START_EVENT
                        ? Self.string(event.data.sequence_start.anchor) : Self.string(event.data.mapping_start.anchor)
                    open.append((anchor, 1))
                    if open.count > maximumDepth {
                        throw ManifestError(path: "manifest", message: "nested deeper than \(maximumDepth) levels")
                    }
                case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                    guard let finished = open.popLast() else { return }
                    try add(finished.nodes, anchor: finished.anchor)
                default:
                    break
                }
            }
        }
    }

    private static func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?) -> String? {
        pointer.map { String(cString: $0) }
    }
}
