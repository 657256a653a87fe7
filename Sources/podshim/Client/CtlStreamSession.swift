import ArgumentParser
import Foundation
import NIOCore
import PodshimSPDY
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The client of an exec or attach over SPDY/3.1 with `v4.channel.k8s.io` (client-go's v4
/// executor): streams `error`, `stdin` (with -i), `stdout`, `stderr` (without a terminal) and
/// `resize` (with one) opened one after the other; our stdin copied to the stdin stream (FIN at its
/// end), stdout and stderr to ours, the window size (at the start and on every SIGWINCH) to the
/// resize stream. The session ends when stdout, stderr and the error stream have ended, whatever
/// our stdin does (`exec -i sh`, `exit` ends it with stdin still open); the error stream's
/// metav1.Status is the result.
///
/// Back-pressure: our stdin is read only when its last piece went into the connection's writer,
/// which suspends while the connection cannot take more; the session's frames are read only as
/// fast as our stdout and stderr take them (NIO stops reading the socket while its small inbound
/// buffer is full).
enum CtlRemoteCommand {
    /// The error stream's status is short; anything longer is cut.
    static let maximumStatus = 64 << 10

    enum Stream: String, Sendable {
        case error, stdin, stdout, stderr, resize
    }

    /// Connects to `url`, runs the session to its end and returns the status the server sent.
    /// With `setup.raw`, our terminal is in raw mode from the upgrade to the end.
    static func run(url text: String, stdin: Bool, setup: CtlTerminalSetup) async throws -> CtlRemoteStatus {
        let url = try CtlStreamURL(text)
        let channel = try await CtlStreamClient.connect(to: url, speaking: .remoteCommand)
        let stdio: CtlStdio
        do {
            stdio = try CtlStdio()
        } catch {
            channel.channel.close(promise: nil)
            throw error
        }
        defer { stdio.shutdown() }
        let raw: CtlRawMode?
        do {
            raw = setup.raw ? try CtlRawMode(fd: STDIN_FILENO) : nil
        } catch {
            channel.channel.close(promise: nil)
            throw error
        }
        defer { raw?.restore() }
        do {
            return try await CtlSignals.with(setup.sizeSource != nil ? [SIGWINCH] : []) { resizes in
                try await channel.executeThenClose { inbound, outbound in
                    let connection = CtlSPDYConnection(channel: channel.channel, outbound: outbound)
                    let status = try await session(connection, inbound, stdin: stdin, setup: setup, stdio: stdio, resizes: resizes)
                    await connection.goAway()
                    return status
                }
            }
        } catch is CtlBrokenPipe {
            raw?.restore()
            throw ExitCode(128 + SIGPIPE)
        }
    }

    private enum Ended: Sendable {
        case session(CtlRemoteStatus)
        case other
    }

    private static func session(
        _ connection: CtlSPDYConnection, _ inbound: NIOAsyncChannelInboundStream<SPDYFrame>, stdin: Bool,
        setup: CtlTerminalSetup, stdio: CtlStdio, resizes: AsyncStream<Int32>
    ) async throws -> CtlRemoteStatus {
        var kinds: [Stream] = [.error]
        if stdin { kinds.append(.stdin) }
        kinds.append(.stdout)
        kinds.append(setup.tty ? .resize : .stderr)
        let table = StreamTable()
        return try await withThrowingTaskGroup(of: Ended.self) { group in
            group.addTask {
                .session(try await read(connection, inbound, table: table, ends: setup.tty ? [.error, .stdout] : [.error, .stdout, .stderr],
                                        stdio: stdio))
            }
            var ids: [Stream: UInt32] = [:]
            for kind in kinds {
                ids[kind] = try await connection.open(["streamtype": kind.rawValue]) { id in table.set(id, kind) }
            }
            if let resize = ids[.resize], let source = setup.sizeSource {
                // The first size goes before any input, so the command sees it before it reads.
                let first = CtlTerminalSize(of: source)
                if let first { try await connection.send(first.message, on: resize) }
                group.addTask {
                    var last = first
                    for await _ in resizes {
                        let size = CtlTerminalSize(of: source)
                        guard let size, size != last else { continue }
                        last = size
                        do {
                            try await connection.send(size.message, on: resize)
                        } catch {
                            break // the connection is gone: the reader says how
                        }
                    }
                    return .other
                }
            }
            if let input = ids[.stdin] {
                group.addTask {
                    do {
                        while let bytes = try await stdio.readInput() {
                            try await connection.send(bytes, on: input)
                        }
                        try await connection.send([], on: input, fin: true)
                    } catch is CancellationError {
                    } catch let error as CtlError {
                        CtlOutput.error("podshim ctl: \(error)") // stdin is lost; the output still comes
                    } catch {
                        // The connection is gone: the reader says how.
                    }
                    return .other
                }
            }
            group.addTask {
                await connection.keepAlive()
                return .other
            }
            while let ended = try await group.next() {
                if case .session(let status) = ended {
                    group.cancelAll()
                    return status
                }
            }
            throw CtlError.failed("the streaming session ended without its reader") // unreachable: the reader returns or throws
        }
    }

    /// Copies stdout and stderr to ours and collects the status, until every stream in `ends` has
    /// ended (FIN, or reset) or the connection is gone.
    private static func read(
        _ connection: CtlSPDYConnection, _ inbound: NIOAsyncChannelInboundStream<SPDYFrame>, table: StreamTable,
        ends: Set<Stream>, stdio: CtlStdio
    ) async throws -> CtlRemoteStatus {
        var open = ends
        var status: [UInt8] = []
        try await connection.read(inbound) { frame in
            switch frame {
            case .data(let id, let flags, let payload):
                guard let kind = table[id] else { return true }
                switch kind {
                case .stdout: try await stdio.writeOutput(payload, to: STDOUT_FILENO)
                case .stderr: try await stdio.writeOutput(payload, to: STDERR_FILENO)
                case .error: status += payload.prefix(max(0, maximumStatus - status.count))
                case .stdin, .resize: break
                }
                if flags & SPDYFrame.flagFin != 0 { open.remove(kind) }
            case .rstStream(let id, _):
                if let kind = table[id] { open.remove(kind) }
            default:
                break
            }
            return !open.isEmpty
        }
        return CtlRemoteStatus(bytes: status, complete: !open.contains(.error))
    }
}

extension CtlRemoteCommand {
    /// Which stream each id is, filled in as the streams are opened and read by the reader.
    final class StreamTable: Sendable {
        private let streams = Mutex<[UInt32: Stream]>([:])

        func set(_ id: UInt32, _ kind: Stream) { streams.withLock { $0[id] = kind } }
        subscript(id: UInt32) -> Stream? { streams.withLock { $0[id] } }
    }
}

/// What the error stream said: a metav1.Status in JSON (v4), nothing for success, or nothing
/// because the connection ended first.
struct CtlRemoteStatus: Sendable {
    var bytes: [UInt8]
    /// The error stream ended (FIN) rather than the connection.
    var complete: Bool

    /// The command's exit status: 0 for Success (or no status), the code of a NonZeroExitCode.
    /// Any other failure is an error with the server's message.
    func exitCode() throws(CtlError) -> Int32 {
        guard complete else {
            throw CtlError.failed("the streaming connection closed before the command's status arrived")
        }
        guard !bytes.isEmpty else { return 0 }
        let text = String(decoding: bytes, as: UTF8.self)
        guard let object = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any] else { // not JSON: reported as it is
            throw CtlError.failed("the streaming server's status is not a JSON object: \(text)")
        }
        if object["status"] as? String == "Success" { return 0 }
        let message = object["message"] as? String ?? text
        if object["reason"] as? String == "NonZeroExitCode" {
            let causes = (object["details"] as? [String: Any])?["causes"] as? [[String: Any]] ?? []
            for cause in causes where cause["reason"] as? String == "ExitCode" {
                if let code = (cause["message"] as? String).flatMap(UInt8.init) { return Int32(code) }
            }
            throw CtlError.failed("\(message) (no exit code given)")
        }
        throw CtlError.failed(message)
    }
}
