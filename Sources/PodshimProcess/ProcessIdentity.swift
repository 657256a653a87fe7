import Foundation
import PodshimSystem

/// A process named by PID *and* start time, so a record survives PID reuse: a recycled PID has
/// another start time. Used to find processes of a podshim that crashed.
public struct ProcessIdentity: Codable, Equatable, Sendable {
    public var pid: Int32
    /// Field 22 of /proc/<pid>/stat: start time in clock ticks since boot.
    public var startTime: UInt64

    public init(pid: Int32, startTime: UInt64) {
        self.pid = pid
        self.startTime = startTime
    }

    /// The identity of the live process `pid`, or nil when there is none. A zombie (exited, not
    /// yet reaped) is not alive: it will never act again.
    public static func of(pid: Int32) -> ProcessIdentity? {
        guard let stat = try? FileSystem.readKernelFile("/proc/\(pid)/stat"), // no /proc entry: the process is gone
              let fields = fields(stat: stat), fields.state != "Z", fields.state != "X" else { return nil }
        return ProcessIdentity(pid: pid, startTime: fields.startTime)
    }

    /// Start time from a /proc/<pid>/stat line (the comm field may contain spaces and parentheses).
    static func parse(stat: String) -> UInt64? {
        fields(stat: stat)?.startTime
    }

    private static func fields(stat: String) -> (state: Substring, startTime: UInt64, exitCode: Int32?)? {
        guard let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // fields[0] is field 3 (state); field 22 (start time) is fields[19], field 52 (exit code,
        // in waitpid's format) fields[49].
        guard fields.count > 19, let start = UInt64(fields[19]) else { return nil }
        let exitCode = fields.count > 49 ? Int32(fields[49].trimmingCharacters(in: .whitespacesAndNewlines)) : nil
        return (fields[0], start, exitCode)
    }

    /// The exit status of this process while it is a zombie (exited, not reaped yet by whoever
    /// inherited it): field 52 of /proc/<pid>/stat, in waitpid's format. Nil when it is alive,
    /// already reaped, or the pid names another process.
    public var zombieExitStatus: ExitStatus? {
        guard let stat = try? FileSystem.readKernelFile("/proc/\(pid)/stat"), // reaped: no entry
              let fields = Self.fields(stat: stat), fields.state == "Z", fields.startTime == startTime,
              let status = fields.exitCode else { return nil }
        return ExitStatus(waitStatus: status)
    }

    /// True when `pid` is still this very process.
    public var isAlive: Bool { ProcessIdentity.of(pid: pid) == self }
}
