/// Seccomp filters for containers, compiled in the parent before the clone; the child only loads
/// the resulting ``SeccompFilter/bpf`` (after no_new_privs, right before execve).
public enum Seccomp {
    /// The `RuntimeDefault` profile (``RuntimeDefaultProfile``) for a container with these
    /// capabilities (its conditional rules depend on them).
    public static func runtimeDefault(capabilities: CapabilitySet) throws(SeccompError) -> SeccompFilter {
        try compile(RuntimeDefaultProfile.document, capabilities: capabilities, source: "RuntimeDefault")
    }

    /// A `Localhost` profile: the OCI/Docker JSON file at `path`.
    public static func localhost(profileAt path: String, capabilities: CapabilitySet) throws(SeccompError) -> SeccompFilter {
        let document = try SeccompProfileDocument.load(path: path)
        return try compile(document, capabilities: capabilities, source: path)
    }

    /// Compiles a profile for a container with these capabilities, for the native architecture
    /// and the running kernel. `source` names the profile in errors.
    public static func compile(
        _ profile: SeccompProfileDocument, capabilities: CapabilitySet, source: String? = nil
    ) throws(SeccompError) -> SeccompFilter {
        try SeccompCompiler(capabilities: capabilities, source: source).compile(profile)
    }
}
