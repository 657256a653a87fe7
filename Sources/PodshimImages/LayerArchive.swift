import Glibc
import PodshimSystem

/// One layer tarball, read from an open (already verified) blob with GNU tar: its member names
/// checked first, then extracted into an empty directory of its own.
struct LayerArchive {
    static let tar = "/bin/tar"

    /// The blob's path, for messages.
    var path: String
    /// The open blob; read from offset 0 on every pass.
    var fd: Int32
    var compression: LayerCompression

    /// Lists the members with `tar -t` and rejects any that is absolute or has a `..` component.
    /// Returns whether the archive has an entry for its root directory (`./`), whose owner, mode
    /// and times then apply to the image's root.
    func checkMembers() throws(ImagePullError) -> Bool {
        let result = try run(["-t", "--absolute-names", "--quoting-style=escape"])  // names exactly as stored
        var hasRoot = false
        for member in result.stdoutText.split(separator: "\n", omittingEmptySubsequences: true) {
            let name = String(member)
            guard Self.isSafe(name) else { throw .unsafeMember(layer: path, member: name) }
            if name.split(separator: "/").allSatisfy({ $0 == "." }) { hasRoot = true }
        }
        return hasRoot
    }

    /// Extracts every member into `directory`, keeping modes, numeric owners and file capabilities
    /// (when root) and `user.*` extended attributes. Other xattrs are dropped: `trusted.overlay.*`
    /// in a layer must not steer the overlay mount that uses this root filesystem as its lower dir.
    func extract(into directory: String) throws(ImagePullError) {
        let privileged = geteuid() == 0
        var arguments = ["-x", "-C", directory, "--numeric-owner", "--same-permissions",
                         privileged ? "--same-owner" : "--no-same-owner", "--xattrs", "--xattrs-include=user.*"]
        if privileged { arguments.append("--xattrs-include=security.capability") }
        _ = try run(arguments)
    }

    /// Whether a member name stays inside the directory it is extracted into.
    static func isSafe(_ member: String) -> Bool {
        !member.hasPrefix("/") && !member.split(separator: "/").contains("..")
    }

    private func run(_ arguments: [String]) throws(ImagePullError) -> HelperCommand.Result {
        guard lseek(fd, 0, SEEK_SET) == 0 else { throw .system(SystemError("lseek", path: path, errno: .last)) }
        let command = HelperCommand([Self.tar] + arguments + ["-f", "-"] + (compression == .gzip ? ["-z"] : []))
        let result: HelperCommand.Result
        do throws(SystemError) {
            result = try command.run(stdin: fd)
        } catch {
            throw .system(error)
        }
        guard result.succeeded else {
            throw .commandFailed(command: command.display + " < " + path, status: result.status.description,
                                 stderr: result.stderrText)
        }
        return result
    }
}
