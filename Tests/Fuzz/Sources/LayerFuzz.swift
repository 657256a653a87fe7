// The `layer` fuzz target: arbitrary bytes as a layer blob (plain, gzip or zstd, as the bytes
// say), read and applied into a fresh directory by LayerApplier. Errors are expected; a finding
// is a crash or anything written outside the layer directory: the directory beside it must hold
// exactly `canary` and `layer`, and the canary must not change. The paths are fixed so that
// seeds can aim absolute links at them (Tests/Fuzz/corpus/layer); run one `layer` fuzzer at a time.

import Glibc
import PodshimImages

enum LayerFuzz {
    static let base = "/tmp/podshim-fuzz-layer"
    static let layer = base + "/layer"
    static let canary = base + "/canary"
    static let canaryText = Array("canary: a layer must never reach this file\n".utf8)
    static let options = LayerApplier.Options(maxUncompressedBytes: 8 << 20, maxEntries: 20_000)

    /// What the canary was when the run began.
    struct Canary: Sendable, Equatable {
        var inode: UInt64
        var mode: UInt32
        var links: UInt64
        var size: Int64
        var modified: Int
    }

    static func run(_ bytes: [UInt8]) {
        let expected = layerFuzzCanary
        guard mkdir(layer, 0o755) == 0 else { fatalError("mkdir \(layer): errno \(errno)") }
        _ = try? LayerApplier.apply(LayerBytesSource(bytes), into: layer, options: options)  // refusals are expected; escapes are not
        let names = entries(base)
        guard names == ["canary", "layer"] else { fatalError("a layer wrote beside its directory: \(names)") }
        guard canaryState() == expected, readCanary() == canaryText else { fatalError("a layer changed the canary") }
        do {
            try LayerApplier.removeLayerDirectory(layer)
        } catch {
            fatalError("cannot remove the applied layer: \(error)")
        }
    }

    /// Makes the base directory and its canary afresh.
    static func prepare() -> Canary {
        try? LayerApplier.removeLayerDirectory(base)  // what an earlier run left, if anything
        guard mkdir(base, 0o700) == 0 else { fatalError("mkdir \(base): errno \(errno)") }
        let fd = open(canary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0, write(fd, canaryText, canaryText.count) == canaryText.count else { fatalError("cannot write \(canary)") }
        close(fd)
        return canaryState()!
    }

    private static func canaryState() -> Canary? {
        var info = stat()
        guard lstat(canary, &info) == 0 else { return nil }
        return Canary(inode: UInt64(info.st_ino), mode: info.st_mode, links: UInt64(info.st_nlink), size: Int64(info.st_size),
                      modified: info.st_mtim.tv_sec)
    }

    private static func readCanary() -> [UInt8] {
        let fd = open(canary, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = read(fd, &buffer, buffer.count)
        return count > 0 ? Array(buffer[..<count]) : []
    }

    private static func entries(_ directory: String) -> [String] {
        guard let handle = opendir(directory) else { return ["<unreadable>"] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}

/// Set up once, on the first input.
private let layerFuzzCanary = LayerFuzz.prepare()
