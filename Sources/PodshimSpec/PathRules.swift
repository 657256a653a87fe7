/// The syntax of file paths in a Pod manifest.
enum PathRules {
    /// Whether `path` starts with `/`.
    static func isAbsolute(_ path: String) -> Bool {
        path.hasPrefix("/")
    }

    /// Whether some `/`-separated component of `path` is `..`.
    static func hasParentComponent(_ path: String) -> Bool {
        path.split(separator: "/").contains("..")
    }

    /// `path` without empty and `.` components, for comparing paths written differently
    /// (`/data/`, `/data` and `//data/.` are the same mount point).
    static func normalized(_ path: String) -> String {
        let components = path.split(separator: "/").filter { $0 != "." }
        return (isAbsolute(path) ? "/" : "") + components.joined(separator: "/")
    }
}
