import ArgumentParser
import Foundation
import GRPCCore
import PodshimCRI

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// `podshim ctl logs [--tail N] [--follow] ID`: the container's CRI log file, read directly.
struct CtlLogs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logs",
        abstract: "Print a container's output: its stdout lines to stdout, its stderr lines to stderr.",
        discussion: """
            The daemon only tells where the log file is (ContainerStatus's log path); ctl reads the file itself, so it must run on the same host with permission to read it. Lines the container wrote in pieces are joined.

            With --follow, new output is printed as it is written until the container exits.
            """
    )

    @OptionGroup var options: CtlOptions

    @Option(help: ArgumentHelp("Print only the last N lines (of what is there when ctl starts).", valueName: "N"))
    var tail: Int?

    @Flag(name: .shortAndLong, help: "Keep printing new output until the container exits.")
    var follow = false

    @Argument(help: ArgumentHelp("The container's id or a unique prefix of it.", valueName: "container-id"))
    var id: String

    func validate() throws {
        if let tail, tail < 0 { throw ValidationError("--tail must be 0 or more") }
    }

    func run() async throws {
        try await CtlReport.run("logs", socket: options.socket) {
            try await CtlSession.with(socket: options.socket, deadline: options.deadline) { session in
                let containerID = try await session.resolveContainer(id)
                let current = try await status(of: containerID, session)
                guard let current else { throw CtlError.notFound("container \(CtlFormat.shortID(containerID)) is gone") }
                let path = current.logPath
                guard !path.isEmpty else {
                    throw CtlError.failed("container \(CtlFormat.shortID(containerID)) has no log file")
                }
                var follower = CtlLogFollower(path: path)
                if !follow {
                    guard follower.open() else { throw CtlError.failed("\(path): \(String(cString: strerror(errno)))") }
                    let entries = follower.read() + follower.finish()
                    Self.write(CtlCRILogReader.tail(entries, tail ?? -1))
                    return
                }
                try await followFile(containerID, &follower, initialState: current.state, session)
            }
        }
    }

    /// Prints what is there (tail applied), then polls the file every quarter second and the
    /// container's state every second, until it has exited and its last output is printed.
    private func followFile(
        _ containerID: String, _ follower: inout CtlLogFollower, initialState: Runtime_V1_ContainerState,
        _ session: CtlSession
    ) async throws {
        var exited = initialState == .containerExited || initialState == .containerUnknown
        if follower.open() {
            Self.write(CtlCRILogReader.tail(follower.read(), tail ?? -1))
        }
        var tick = 0
        while !exited {
            try await Task.sleep(for: .milliseconds(250))
            tick += 1
            if follower.isOpen || follower.open() {
                Self.write(follower.read())
            }
            if tick % 4 == 0 {
                let state = try await status(of: containerID, session)?.state
                exited = state == nil || state == .containerExited || state == .containerUnknown
            }
        }
        if follower.isOpen || follower.open() {
            Self.write(follower.read() + follower.finish())
        }
    }

    /// The container's status; nil once it has been removed.
    private func status(of containerID: String, _ session: CtlSession) async throws -> Runtime_V1_ContainerStatus? {
        var request = Runtime_V1_ContainerStatusRequest()
        request.containerID = containerID
        do {
            return try await session.runtime.containerStatus(request, options: session.options).status
        } catch let error as RPCError where error.code == .notFound {
            return nil
        }
    }

    private static func write(_ entries: [CtlLogEntry]) {
        var out = Data()
        var err = Data()
        func flush() {
            CtlOutput.stdout(out)
            CtlOutput.stderr(err)
            out.removeAll()
            err.removeAll()
        }
        for entry in entries {
            switch entry.stream {
            case .stdout:
                if !err.isEmpty { flush() }
                out.append(contentsOf: entry.text)
                out.append(UInt8(ascii: "\n"))
            case .stderr:
                if !out.isEmpty { flush() }
                err.append(contentsOf: entry.text)
                err.append(UInt8(ascii: "\n"))
            }
        }
        flush()
    }
}

/// A log file read incrementally: it notices when the file is truncated or replaced (log
/// rotation, ReopenContainerLog) and starts over on the new one.
struct CtlLogFollower {
    let path: String
    private var handle: FileHandle?
    private var device: UInt64 = 0
    private var inode: UInt64 = 0
    private var offset: UInt64 = 0
    private var reader = CtlCRILogReader()

    init(path: String) { self.path = path }

    var isOpen: Bool { handle != nil }

    /// Opens the file; false (with errno set) when it cannot be opened (yet).
    mutating func open() -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        var info = stat()
        guard fstat(handle.fileDescriptor, &info) == 0 else {
            try? handle.close() // closing a read-only handle being dropped: nothing to lose
            return false
        }
        self.handle = handle
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        offset = 0
        return true
    }

    /// Whole lines written since the last read.
    mutating func read() -> [CtlLogEntry] {
        guard let handle else { return [] }
        var entries: [CtlLogEntry] = []
        var info = stat()
        if fstat(handle.fileDescriptor, &info) == 0, UInt64(info.st_size) < offset {
            // Truncated in place: start from its beginning.
            try? handle.seek(toOffset: 0) // lseek on an open regular file does not fail; at worst lines are skipped
            offset = 0
            reader = CtlCRILogReader()
        }
        if let data = try? handle.readToEnd(), !data.isEmpty { // a read error: nothing new this time, the next poll reads again
            offset += UInt64(data.count)
            entries += reader.feed(data)
        }
        var current = stat()
        if stat(path, &current) == 0, UInt64(current.st_dev) != device || UInt64(current.st_ino) != inode {
            // Replaced: finish the old file, continue with the new one from its start.
            entries += reader.finish()
            try? handle.close() // closing a read-only handle being dropped: nothing to lose
            self.handle = nil
            reader = CtlCRILogReader()
            if open() { entries += read() }
        }
        return entries
    }

    /// The last line without a newline and unfinished partial lines, once nothing more will come.
    mutating func finish() -> [CtlLogEntry] {
        reader.finish()
    }
}
