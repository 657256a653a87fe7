/// Parsing `spec.volumes`.
extension ManifestParser {
    private static let volumeFields: Set<String> = ["name", "emptyDir", "hostPath"]
    private static let emptyDirFields: Set<String> = ["medium", "sizeLimit"]
    private static let hostPathFields: Set<String> = ["path", "type"]

    /// `spec.volumes`: named, uniquely, each with exactly one source.
    static func parseVolumes(in spec: ManifestMapping) throws(ManifestError) -> [Volume] {
        var volumes: [Volume] = []
        for item in try spec.mappingList("volumes", accepting: volumeFields) {
            let name = try item.requiredString("name")
            guard NameRules.isDNS1123Label(name) else {
                throw ManifestError(path: item.path(of: "name"), message: NameRules.labelRule)
            }
            guard !volumes.contains(where: { $0.name == name }) else {
                throw ManifestError(path: item.path(of: "name"), message: "duplicate volume name \"\(name)\"")
            }
            volumes.append(Volume(name: name, source: try parseVolumeSource(item)))
        }
        return volumes
    }

    /// The one source of a volume. A source written with a null value (`emptyDir:`) counts as
    /// given, with every field at its default.
    private static func parseVolumeSource(_ volume: ManifestMapping) throws(ManifestError) -> VolumeSource {
        let given = ["emptyDir", "hostPath"].filter(volume.contains)
        guard given.count == 1 else {
            throw volume.error("must have exactly one of emptyDir, hostPath")
        }
        if volume.contains("emptyDir") {
            let emptyDir = try volume.mapping("emptyDir", accepting: emptyDirFields)
                ?? .empty(at: volume.path(of: "emptyDir"))
            return try parseEmptyDir(emptyDir)
        }
        let hostPath = try volume.mapping("hostPath", accepting: hostPathFields)
            ?? .empty(at: volume.path(of: "hostPath"))
        return try parseHostPath(hostPath)
    }

    /// `emptyDir: { medium: ""|Memory, sizeLimit: <quantity> }`; the size limit is a
    /// non-negative quantity of bytes that fits in an `Int64`.
    private static func parseEmptyDir(_ emptyDir: ManifestMapping) throws(ManifestError) -> VolumeSource {
        let medium = try emptyDir.oneOf("medium", [EmptyDirMedium.disk.rawValue, EmptyDirMedium.memory.rawValue])
            .flatMap(EmptyDirMedium.init(rawValue:)) ?? .disk
        // A quantity may be written as a number (`sizeLimit: 1000`); it is kept as written.
        let sizeLimit = try emptyDir.string("sizeLimit")
        if let sizeLimit {
            let path = emptyDir.path(of: "sizeLimit")
            let quantity = try QuantityRules.nonNegative(sizeLimit, at: path, malformed: QuantityRules.rule)
            _ = try QuantityRules.bytes(quantity, at: path)
        }
        return .emptyDir(medium: medium, sizeLimit: sizeLimit)
    }

    /// `hostPath: { path: <absolute>, type: <HostPathType> }`.
    private static func parseHostPath(_ hostPath: ManifestMapping) throws(ManifestError) -> VolumeSource {
        let path = try hostPath.requiredString("path")
        guard PathRules.isAbsolute(path) else {
            throw ManifestError(path: hostPath.path(of: "path"), message: "must be an absolute path")
        }
        guard !PathRules.hasParentComponent(path) else {
            throw ManifestError(path: hostPath.path(of: "path"), message: "must not contain '..'")
        }
        let type = try hostPath.oneOf("type", HostPathType.allCases.map(\.rawValue))
            .flatMap(HostPathType.init(rawValue:)) ?? .unset
        return .hostPath(path: path, type: type)
    }
}
