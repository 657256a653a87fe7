/// The fields of one YAML mapping in a manifest, already checked against the keys it accepts.
///
/// Made by ``ManifestNode/mapping(accepting:)``. A field whose value is null (`key: ~` or
/// `key:` with nothing after it) counts as absent, as it does in Kubernetes' JSON. Accessors for
/// optional fields return nil (or an empty value) when the field is absent, and the optional
/// string accessors treat an empty string as absent too; `required…`
/// accessors throw `required` at the field's path instead.
struct ManifestMapping {
    /// The path of the mapping itself, such as `spec.containers[0]`.
    let path: String
    /// Field values by key, each with its path.
    private let fields: [String: ManifestNode]

    /// A mapping at `path` holding `entries` (keys are unique: the YAML parser rejects duplicates).
    init(path: String, entries: [(key: String, value: ManifestNode)]) {
        self.path = path
        self.fields = Dictionary(entries, uniquingKeysWith: { first, _ in first })
    }

    /// A mapping at `path` with no fields, standing in for an absent one.
    static func empty(at path: String) -> ManifestMapping {
        ManifestMapping(path: path, entries: [])
    }

    /// An error about the mapping itself.
    func error(_ message: String) -> ManifestError {
        ManifestError(path: path, message: message)
    }

    /// The path of field `key` in this mapping.
    func path(of key: String) -> String {
        ManifestNode.path(path, key)
    }

    /// Whether the manifest writes `key`, even with a null value.
    func contains(_ key: String) -> Bool {
        fields[key] != nil
    }

    /// Field `key`, or nil when it is absent or null.
    func field(_ key: String) -> ManifestNode? {
        guard let node = fields[key], !node.isNull else { return nil }
        return node
    }

    /// Field `key`, throwing `required` when it is absent or null.
    func requiredField(_ key: String) throws(ManifestError) -> ManifestNode {
        guard let node = field(key) else { throw ManifestError(path: path(of: key), message: "required") }
        return node
    }

    /// Field `key` as a non-empty string; an empty string counts as absent.
    func requiredString(_ key: String) throws(ManifestError) -> String {
        let value = try requiredField(key).string()
        guard !value.isEmpty else { throw ManifestError(path: path(of: key), message: "required") }
        return value
    }

    /// Field `key` as a string, or nil when absent or empty.
    func string(_ key: String) throws(ManifestError) -> String? {
        guard let value = try field(key)?.string(), !value.isEmpty else { return nil }
        return value
    }

    /// Field `key` as a boolean, or nil when absent.
    func bool(_ key: String) throws(ManifestError) -> Bool? {
        try field(key)?.bool()
    }

    /// Field `key` as an integer, or nil when absent.
    func int(_ key: String) throws(ManifestError) -> Int? {
        try field(key)?.int()
    }

    /// Field `key` as a list of strings, empty when absent.
    func stringList(_ key: String) throws(ManifestError) -> [String] {
        try field(key)?.stringList() ?? []
    }

    /// Field `key` as a mapping of strings to strings, empty when absent.
    func stringMap(_ key: String) throws(ManifestError) -> [String: String] {
        try field(key)?.stringMap() ?? [:]
    }

    /// Field `key` as a mapping accepting only `accepted` keys, or nil when absent. Another key
    /// is an `unknown field` error, unless `unknownKey` gives another message.
    func mapping(
        _ key: String, accepting accepted: Set<String>, unknownKey: String = "unknown field"
    ) throws(ManifestError) -> ManifestMapping? {
        try field(key)?.mapping(accepting: accepted, unknownKey: unknownKey)
    }

    /// Field `key` as a list of mappings accepting only `accepted` keys, empty when absent.
    func mappingList(_ key: String, accepting accepted: Set<String>) throws(ManifestError) -> [ManifestMapping] {
        try field(key)?.mappingList(accepting: accepted) ?? []
    }

    /// Field `key` as a string that must be one of `allowed`, or nil when absent or empty.
    /// Any other value gives `must be one of A, B, C` (an empty allowed value is shown as `""`).
    func oneOf(_ key: String, _ allowed: [String]) throws(ManifestError) -> String? {
        guard let node = field(key) else { return nil }
        let value = try node.string()
        if value.isEmpty { return nil }
        guard allowed.contains(value) else {
            let names = allowed.map { $0.isEmpty ? "\"\"" : $0 }.joined(separator: ", ")
            throw node.error("must be one of \(names)")
        }
        return value
    }
}
